"""The notification log, a channel's test message, and sending what is due.

The vendor's answer and the error are stored masked (the adapters hide the webhook's
token and secrets); no answer here names a webhook URL or a signing secret.
"""

from __future__ import annotations

from datetime import datetime

from golive.api.schemas.base import Response


class NotificationAttemptView(Response):
    """One delivery attempt of one notification through one channel."""

    at: datetime
    channel: str
    type: str
    event: str
    order: int | None
    ok: bool
    status: int | None
    """HTTP status (or SMTP reply code); None when nothing answered."""
    answer: str
    error: str
    notification_status: str
    """The notification's own state now: queued (will be retried), sent or failed."""
    attempts: int


class ChannelTestAnswer(Response):
    """What the vendor answered to a test message, sent at once (not queued)."""

    channel: str
    ok: bool
    status: int | None
    body: str
    error: str


class NotificationsSent(Response):
    tried: int
    """How many queued notifications were due and tried."""
