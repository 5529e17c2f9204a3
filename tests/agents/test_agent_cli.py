"""`golive agent` refuses what would make a broken agent, in one line (exit 2), before it
connects anywhere; `golive server` refuses GOLIVE_TASKS=celery without a broker."""

from __future__ import annotations

import pytest

from golive.cli.main import main

POSTGRES = "postgresql+psycopg://golive@127.0.0.1/golive"
KEY = "x" * 43 + "="

CASES = [
    # environment, arguments, the refusal
    ({"GOLIVE_DATABASE_URL": POSTGRES, "GOLIVE_SECRET_KEY": KEY}, [],
     "GOLIVE_TASKS=celery needs GOLIVE_BROKER_URL"),
    ({"GOLIVE_BROKER_URL": "http://127.0.0.1:6379", "GOLIVE_DATABASE_URL": POSTGRES}, [],
     "GOLIVE_BROKER_URL must start with redis://, rediss://, amqp:// or amqps:// (got http://)"),
    ({"GOLIVE_BROKER_URL": "redis://127.0.0.1:6379/0"}, [],
     "an agent shares the server's store: set GOLIVE_DATABASE_URL to its PostgreSQL or MySQL"),
    ({"GOLIVE_BROKER_URL": "redis://127.0.0.1:6379/0", "GOLIVE_DATABASE_URL": POSTGRES},
     ["--queue", "dc 1"], "--queue: 'dc 1' is not a valid zone name"),
    ({"GOLIVE_BROKER_URL": "redis://127.0.0.1:6379/0", "GOLIVE_DATABASE_URL": POSTGRES},
     ["--concurrency", "0"], "--concurrency is the number of deployments run at once: 1 to 64"),
    ({"GOLIVE_BROKER_URL": "redis://127.0.0.1:6379/0", "GOLIVE_DATABASE_URL": POSTGRES}, [],
     "an agent needs the server's secret key"),
    ({"GOLIVE_BROKER_URL": "redis://127.0.0.1:6379/0", "GOLIVE_DATABASE_URL": POSTGRES,
      "GOLIVE_SECRET_KEY": KEY}, ["--name", "a/b"], "agent name: 'a/b' is not a valid name"),
]


@pytest.mark.parametrize(("env", "args", "refusal"), CASES)
def test_a_broken_agent_is_refused_before_it_starts(
        env: dict[str, str], args: list[str], refusal: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GOLIVE_TASKS", "celery")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["agent", *args]) == 2
    err = capsys.readouterr().err
    assert refusal in " ".join(err.split()), err


def test_the_agent_is_local_only_and_the_server_needs_a_broker(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GOLIVE_URL", "http://127.0.0.1:9")
    assert main(["agent"]) == 2
    assert "golive agent works on this machine's data directory" in capsys.readouterr().err
    monkeypatch.delenv("GOLIVE_URL")
    monkeypatch.setenv("GOLIVE_TASKS", "celery")
    assert main(["server", "--port", "9"]) == 2
    assert "GOLIVE_TASKS=celery needs GOLIVE_BROKER_URL" in capsys.readouterr().err
