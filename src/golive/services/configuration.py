"""Applying and exporting golive.yaml, as use cases (site admins only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.orm import Session

from golive.config.apply import ApplyReport, apply_config
from golive.config.export import export_config
from golive.config.loader import load_file
from golive.domain.permissions import Permission
from golive.domain.secrets import mask_url_passwords
from golive.services.users import require
from golive.store.models import User
from golive.store.secrets import SecretBox


def apply_file(
    session: Session, box: SecretBox, by: User, path: Path, *, prune: bool = False,
    env: Mapping[str, str] | None = None,
) -> ApplyReport:
    """Validate and upsert the file; flushes, the caller commits (one transaction)."""
    require(session, by, None, Permission.APPLY_CONFIG, "applying a configuration")
    loaded = load_file(path, env)
    return apply_config(session, loaded, box, prune=prune)


def export_text(session: Session, box: SecretBox, by: User, *, with_secrets: bool) -> str:
    require(session, by, None, Permission.EXPORT_CONFIG, "exporting the configuration")
    if with_secrets:
        require(session, by, None, Permission.EXPORT_SECRETS, "exporting with secrets")
    text = export_config(session, box, with_secrets=with_secrets)
    # a password written into a repository URL or a command is not a sealed field, but
    # it is a secret all the same
    return text if with_secrets else mask_url_passwords(text)
