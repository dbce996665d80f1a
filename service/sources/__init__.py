"""Sources managed through the API (config sources live in sources.yaml)."""
