"""Transports run commands and move files on a host: local (a folder) or SSH."""

from __future__ import annotations

from golive.adapters.transport.base import CommandResult, Transport
from golive.adapters.transport.local import LocalTransport

__all__ = ["CommandResult", "LocalTransport", "Transport"]
