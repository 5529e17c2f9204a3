"""Pure rules of golive: no I/O, no SQLAlchemy. See README.md in this folder."""
