"""Secrets at rest: Fernet with a key from GOLIVE_SECRET_KEY or a key file (mode 600).

Masking lives here too, so every place that shows a secret-bearing value
(URLs, settings) masks it the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from golive.domain.secrets import mask_url_passwords
from golive.errors import SecretError

MASK = "***"


class SecretBox:
    """Encrypts and decrypts secrets with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretError(
                "the secret key is not a valid Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    def seal(self, clear: str) -> str:
        return self._fernet.encrypt(clear.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretError(
                "a stored secret cannot be decrypted: GOLIVE_SECRET_KEY or the key file "
                "is not the key it was sealed with"
            ) from None


def load_key(env_key: str, key_file: Path) -> bytes:
    """The key from ``env_key`` if set, else from ``key_file``, created (mode 600) if missing."""
    if env_key:
        return env_key.encode("ascii")
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def url_password(url: str) -> str | None:
    """The password inside a SQLAlchemy URL, or None."""
    try:
        return make_url(url).password
    except ArgumentError:
        return None


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***; unparseable URLs are masked whole."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return MASK
    if parsed.password is None:
        return parsed.render_as_string(hide_password=False)
    # a placeholder first: rendering would URL-encode the mask itself (%2A%2A%2A)
    hidden = parsed.set(password="GOLIVEMASK").render_as_string(hide_password=False)
    return hidden.replace("GOLIVEMASK", MASK)


def mask_text(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of each non-empty secret, and every password in a
    URL (a repository's, a command's), replaced by ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return mask_url_passwords(text)
