"""The response ledger (回应台账): tickets, their state machine, SLA deadlines and public replies."""
