"""Which values are secrets, and how they are hidden in what golive shows or records.

A value is a secret when its key says so (password, secret, token, key, webhook URLs
carry their token in the query) — checked by name, so a new field named
``api_secret`` is masked without anyone remembering to list it.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_key|private_key|webhook|^key$"
                        r"|_key$|credential|authorization|cookie)", re.IGNORECASE)
_SECRET_WORD = r"[\w-]*(?:password|passwd|secret|token|webhook|api_key|private_key)[\w-]*"
BLOCK_SCALAR = re.compile(
    rf"^(?P<head>(?P<indent>[ \t]*)(?:- )?{_SECRET_WORD}[\"']?[ \t]*:[ \t]*)[|>][-+0-9]*"
    r"[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*(?:\n|$)|[ \t]*\n)*)",
    re.IGNORECASE | re.MULTILINE)
"""``private_key: |`` and the more-indented lines that follow it (a YAML block scalar)."""
BLOCK_VALUE = re.compile(
    rf"^(?P<head>[ \t]*(?:- )?{_SECRET_WORD}[\"']?[ \t]*:[ \t]*)(?P<value>[^|>{{\[\s].*)$",
    re.IGNORECASE | re.MULTILINE)
"""``password: correct horse battery`` on a line of its own: the value runs to the end."""
KEYED_VALUE = re.compile(
    rf"(?P<head>{_SECRET_WORD}[\"']?\s*[:=]\s*)"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s,}\]][^,}\]\n]*)", re.IGNORECASE)
"""``{secret: value}`` / ``"token": "value"`` / ``password=value`` inside a line."""
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)(?P<pw>[^@\s/]+)(?=@)",
                          re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def mask_url_passwords(text: str) -> str:
    """``scheme://user:password@host`` → ``scheme://user:***@host`` anywhere in ``text``."""
    return URL_PASSWORD.sub(lambda m: m.group(0) if m.group("pw").startswith("${")
                            else m.group("head") + MASK, text)


def mask_text(text: str) -> str:
    """Passwords in URLs and the values of secret-named keys in ``text`` (a YAML file, a
    JSON fragment) replaced by ``***``; ``${VAR}`` references are kept, they hide nothing."""
    text = mask_url_passwords(text)
    text = BLOCK_SCALAR.sub(lambda m: f"{m.group('head')}{MASK}\n", text)
    text = BLOCK_VALUE.sub(lambda m: _masked(m, m.group("value").rstrip()), text)
    return KEYED_VALUE.sub(lambda m: _masked(m, m.group("value")), text)


def _masked(match: re.Match[str], value: str) -> str:
    if value.strip("\"' ").startswith("${") or value.strip() == MASK:
        return match.group(0)  # a reference to a variable, or already hidden
    return match.group("head") + MASK


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, strings) with secret-named keys' values replaced
    by ``***`` and passwords in URLs hidden."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(str(k)) and v not in (None, "", False)
                    else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
