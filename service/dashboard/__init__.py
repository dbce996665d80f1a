"""The dashboard's own figures: hot terms of a period and the 30-day trend (items, alerts, tickets)."""
