"""Which messages the UI has, and which a catalog lacks.

Messages are extracted as Babel does (``pybabel extract``): ``_()``, ``gettext``,
``ngettext`` and ``N_`` in the web package's Python, and ``{{ _() }}`` /
``{% trans %}`` in its templates. ``python -m golive.web.catalogs [LOCALE]`` prints the
missing ones as ``.po`` entries to fill in (default zh_CN); the test suite fails while
any is missing, so every page is fully translated.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from golive.web import i18n

WEB = Path(__file__).parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")


@dataclass(frozen=True)
class Message:
    id: str
    plural: str
    where: str


def extract() -> dict[str, Message]:
    """Every message of the UI by its (singular) source text."""
    found: dict[str, Message] = {}
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n",
                                        "trim_blocks": "true", "lstrip_blocks": "true"}}
    for filename, lineno, text, _comments, _context in extract_from_dir(
            str(WEB), METHODS, options_map=options, keywords=KEYWORDS,
            comment_tags=(), strip_comment_tags=True):
        singular, plural = (text[0], text[1]) if isinstance(text, tuple) else (text, "")
        if singular and singular not in found:
            found[singular] = Message(singular, plural, f"{filename}:{lineno}")
    return found


def missing(locale: str = "zh_CN") -> list[Message]:
    catalog = i18n.catalog(locale)
    return [m for m in extract().values()
            if (m.id if not m.plural else (m.id, 0)) not in catalog]


def mismatched_placeholders(locale: str = "zh_CN") -> list[str]:
    """Messages whose translation names other placeholders than the source text."""
    catalog = i18n.catalog(locale)
    wrong = []
    for message in extract().values():
        translated = catalog.get(message.id if not message.plural else (message.id, 0))
        if translated is not None and sorted(PLACEHOLDER.findall(translated)) != sorted(
                PLACEHOLDER.findall(message.id)):
            wrong.append(message.id)
    return wrong


def conflicts(locale: str = "zh_CN") -> list[str]:
    """Messages two area files translate differently (the merged catalog would keep one
    of them by chance): each should be said one way across the UI."""
    seen: dict[str, tuple[str, str]] = {}
    found = []
    for path in sorted((i18n.TRANSLATIONS / locale).glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if not message.id or isinstance(message.id, tuple) or not message.string:
                    continue
                earlier = seen.setdefault(str(message.id), (str(message.string), path.name))
                if earlier[0] != message.string:
                    found.append(f"{message.id!r}: {earlier[0]!r} in {earlier[1]}, "
                                 f"{message.string!r} in {path.name}")
    return found


def as_po(messages: list[Message]) -> Iterator[str]:
    for message in messages:
        yield f"#: {message.where}"
        yield f"msgid {_quoted(message.id)}"
        if message.plural:
            yield f"msgid_plural {_quoted(message.plural)}"
            yield 'msgstr[0] ""'
        else:
            yield 'msgstr ""'
        yield ""


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


if __name__ == "__main__":
    for line in as_po(missing(sys.argv[1] if len(sys.argv) > 1 else "zh_CN")):
        print(line)
