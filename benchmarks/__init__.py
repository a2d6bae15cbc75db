"""Benchmarks comparing storelayer with raw drivers, SQLAlchemy Core and ORM,
advanced-alchemy and Django on the same table and databases. Run ``python -m benchmarks``."""
