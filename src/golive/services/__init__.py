"""Use cases: every change to golive's data goes through a function here."""
