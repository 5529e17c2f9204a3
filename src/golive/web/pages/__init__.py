"""The pages, one module per area of the UI; each registers its handlers on
``web.page.router`` when imported. Importing this package imports them all."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
