"""Ledger exports (回应台账): xlsx/csv files, the weekly job and the daily brief (日报)."""

from service.scheduling import registry

registry.register("service.exports.scheduled:jobs")
