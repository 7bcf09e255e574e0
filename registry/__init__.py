"""The grid registry: the administrative tree, resident groups and staff in Redis (README.md)."""
