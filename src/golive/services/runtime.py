"""What a use case needs at hand: the settings, the store and the secret box."""

from __future__ import annotations

from dataclasses import dataclass

from golive.services.recovery import recover
from golive.settings import Settings, get_settings
from golive.store.db import Store, open_store
from golive.store.secrets import SecretBox, load_key


@dataclass
class Runtime:
    settings: Settings
    store: Store
    box: SecretBox

    def close(self) -> None:
        self.store.close()


def open_runtime(settings: Settings | None = None) -> Runtime:
    """Open the store named by the settings (migrating it) and load the secret key."""
    settings = settings or get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    box = SecretBox(load_key(settings.secret_key, settings.secret_key_file))
    runtime = Runtime(settings, open_store(settings.store_url), box)
    with runtime.store.session() as session:
        if recover(session):
            session.commit()
    return runtime
