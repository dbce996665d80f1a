"""APScheduler hosting: persisted jobs, one scheduler per database (lease), job registry."""
