"""Adapters: git, build and pack, transports to hosts, SQL targets. See README.md."""
