"""golive: deploy orders for microservice teams, through test, staging and prod."""

__version__ = "0.1.0"
