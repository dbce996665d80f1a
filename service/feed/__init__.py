"""Alerts: what officers see when a rule hits an item, and what is pushed."""
