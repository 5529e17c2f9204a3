"""Helpers that golive's tests (and users' own tests) reuse."""
