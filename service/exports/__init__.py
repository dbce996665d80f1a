"""Ledger exports (回应台账): xlsx/csv files, the weekly job and the daily brief (日报)."""
