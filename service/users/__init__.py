"""User accounts: password hashes, roles, departments, second factor, lockout."""
