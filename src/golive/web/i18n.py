"""The pages' language: zh_CN or en, from Babel catalogs, chosen per request.

Catalogs are the ``.po`` files under ``web/translations/<locale>/`` — one file per area
of the UI (``layout.po``, ``orders.po``, ...), merged when first read, so each area's
messages sit beside each other and the files are read as text (no compile step at
install). The source messages are the English text; ``en`` needs no catalog.

The locale of the request being rendered is a context variable: the templates' ``_()``
and the pages' Python code translate through it (``gettext`` below).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel import negotiate_locale
from babel.messages.pofile import read_po

LOCALES = ("en", "zh_CN")
DEFAULT = "en"
TRANSLATIONS = Path(__file__).parent / "translations"

_current: ContextVar[str] = ContextVar("golive_locale", default=DEFAULT)

Catalog = dict[str | tuple[str, int], str]
"""msgid -> text, and (msgid, n) -> the plural form n."""


@cache
def catalog(locale: str) -> Catalog:
    """Every message of ``locale``'s ``.po`` files (fuzzy and empty ones left out)."""
    merged: Catalog = {}
    folder = TRANSLATIONS / locale
    for path in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with path.open("rb") as handle:
            po = read_po(handle, locale=locale)
        for message in po:
            if not message.id or message.fuzzy:
                continue
            if isinstance(message.id, tuple):
                forms = message.string if isinstance(message.string, tuple) else ()
                for index, text in enumerate(forms):
                    if text:
                        merged[(message.id[0], index)] = text
            elif message.string:
                merged[str(message.id)] = str(message.string)
    return merged


def current() -> str:
    return _current.get()


@contextmanager
def use(locale: str) -> Iterator[None]:
    token = _current.set(locale if locale in LOCALES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return catalog(_current.get()).get(message, message) if _current.get() != DEFAULT \
        else message


def ngettext(singular: str, plural: str, number: int) -> str:
    """Our one catalog language, Chinese, has a single plural form (its .po headers say
    ``nplurals=1``): form 0 whatever the number; English chooses by the number."""
    found = catalog(current()).get((singular, 0)) if current() != DEFAULT else None
    return found or (singular if number == 1 else plural)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Marks a message for extraction where it is defined; translated where shown."""
    return message


def negotiate(accept_language: str) -> str:
    """The best of our locales for an ``Accept-Language`` header; English otherwise."""
    wanted = []
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag and tag != "*":
            wanted.append(tag)
    found = negotiate_locale(wanted, list(LOCALES), sep="_")
    if found is None and any(tag.lower().startswith("zh") for tag in wanted):
        found = "zh_CN"  # zh, zh_TW, zh_Hans: Chinese beats English for them
    return found or DEFAULT


def choose(user_language: str, chosen_here: str, accept_language: str) -> str:
    """The user's own choice if they made one in their profile; else the one picked on
    this browser (the language switch's cookie); else the browser's."""
    for choice in (user_language, chosen_here):
        if choice in LOCALES:
            return choice
    return negotiate(accept_language)
