"""Real servers (Elasticsearch, PostgreSQL) started for the test session; see fixtures.py."""
