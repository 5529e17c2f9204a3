"""What the audit log and responses hide: secret-named keys, passwords in URLs, secret
values inside YAML text — and what they keep (``${VAR}`` references, ordinary text)."""

from __future__ import annotations

from typing import Any

import pytest

from golive.domain.secrets import MASK, mask_secrets, mask_text


@pytest.mark.parametrize(("text", "expected"), [
    ("mysql+pymysql://deploy:s3cret@10.0.0.2/shop", f"mysql+pymysql://deploy:{MASK}@10.0.0.2/shop"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("mysql://u:${DB_PASSWORD}@h/db", "mysql://u:${DB_PASSWORD}@h/db"),  # a reference
    ("push_secret: abc123", f"push_secret: {MASK}"),
    ('{"token": "glv_x"}', f'{{"token": {MASK}}}'),
    ("secret: ${DINGTALK_SECRET}", "secret: ${DINGTALK_SECRET}"),
    ("webhook: https://oapi.example/robot/send?access_token=zz", f"webhook: {MASK}"),
    ("password=hunter2 and more", f"password={MASK}"),  # rather too much than too little
    ("UPDATE t SET a = 1 WHERE id = 2", "UPDATE t SET a = 1 WHERE id = 2"),
    ("build: make dist", "build: make dist"),
    ("  password: correct horse staple\n  user: u", f"  password: {MASK}\n  user: u"),
    ("- password: a,b c", f"- password: {MASK}"),
    ("key:\n  private_key: |\n    -----BEGIN KEY-----\n    abc\n  user: deploy\n",
     f"key:\n  private_key: {MASK}\n  user: deploy\n"),
    ("  - {type: dingtalk, secret: abc def, name: x}",
     f"  - {{type: dingtalk, secret: {MASK}, name: x}}"),
])
def test_mask_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ({"password": "x"}, {"password": MASK}),
    ({"api_secret": "x", "name": "y"}, {"api_secret": MASK, "name": "y"}),
    ({"secret": ""}, {"secret": ""}),  # nothing to hide: keep it visibly empty
    ({"body": {"token": "t", "n": 1}}, {"body": {"token": MASK, "n": 1}}),
    ([{"key": "k"}], [{"key": MASK}]),
    ({"url": "https://u:p@h/x"}, {"url": f"https://u:{MASK}@h/x"}),
    ({"number": 7, "reason": "flaky test"}, {"number": 7, "reason": "flaky test"}),
])
def test_mask_secrets(value: Any, expected: Any) -> None:
    assert mask_secrets(value) == expected
