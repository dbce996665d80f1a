"""Who is calling: principals, roles and the one place authorisation is decided."""
