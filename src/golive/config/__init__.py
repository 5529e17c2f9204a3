"""Configuration as code: the golive.yaml schema, loading, apply and export."""
