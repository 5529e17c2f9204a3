"""``unknown``: golive killed (SIGKILL) while a statement runs on MariaDB / PostgreSQL.

``golive order deploy N`` runs as a real process; once its statement is recorded
``running`` and runs on the server, the process is killed. The next golive command
(any: opening the store recovers what dead runners left) shows the statement
``unknown``, the deployment ``interrupted`` and the order ``test:failed``; deploying
is refused until a person resolves the statement — ``--as executed`` (it is not run
again) or ``--as retry`` (it is).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sql_world import SqlWorld, end_sessions, sessions_running, sleep_sql, wait_for

from golive.cli.main import main
from golive.services.recovery import UNKNOWN_MESSAGE
from golive.store.models import Deployment, LogLine, SqlExecution, SqlLock
from golive.testing.world import rows

GOLIVE = Path(sys.executable).parent / "golive"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def kill_mid_statement(world: SqlWorld, order_id: int, statement: str) -> int:
    """Run ``golive order deploy`` as alice in a process and SIGKILL it while
    ``statement`` runs on the server; the killed process's pid."""
    assert GOLIVE.is_file(), f"the golive console script is not at {GOLIVE}"
    env = {**os.environ, "GOLIVE_USER": "alice"}  # GOLIVE_HOME: the test's home
    with open(world.root / "deploy.out", "wb") as out:
        process = subprocess.Popen([str(GOLIVE), "order", "deploy", str(order_id), "--json"],
                                   env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for("the statement recorded running", lambda: rows(
            world.runtime, SqlExecution, SqlExecution.order_id == order_id,
            SqlExecution.status == "running"))
        wait_for("the statement running on the server",
                 lambda: sessions_running(world.backend, world.url, statement))
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)  # reaped: a zombie would still look alive
    assert process.returncode == -signal.SIGKILL, (world.root / "deploy.out").read_text()
    return process.pid


@pytest.mark.parametrize("outcome", ["executed", "retry"])
def test_a_statement_cut_short_by_sigkill_is_unknown_until_resolved(
        world: SqlWorld, backend: str, outcome: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    statement = sleep_sql(backend, 10)
    order_id = world.order(statement)
    pid = kill_mid_statement(world, order_id, statement)
    # the server still sleeps for the dead client (and holds its lock): end that session,
    # as a person cleaning up would, so the retry below need not wait for it
    end_sessions(backend, sessions_running(backend, world.url, statement))

    # before any golive command ran: still "running", held by the dead process
    (execution,) = world.executions(order_id)
    assert execution.status == "running" and f":{pid}:" in execution.runner
    assert [lock.order_id for lock in rows(world.runtime, SqlLock)] == [order_id]

    code, out, err = cli(capsys, "sql", "list", str(order_id), "--json")
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed["statement"] == "orders:1" and listed["text"] == statement
    (seen,) = listed["executions"]
    assert (seen["database"], seen["stage"], seen["status"], seen["by"]) == (
        "shop-test", "test", "unknown", "alice")
    assert seen["message"] == UNKNOWN_MESSAGE
    assert "may or may not have taken effect" in seen["message"]
    (killed,) = rows(world.runtime, Deployment, Deployment.order_id == order_id)
    assert killed.status == "interrupted"
    assert killed.error == "interrupted: the golive process running this deployment stopped"
    assert rows(world.runtime, LogLine, LogLine.deployment_id == killed.id)[-1].text == \
        f"{killed.error}; `golive order deploy {order_id}` resumes it"
    assert world.state(order_id) == "test:failed"
    assert rows(world.runtime, SqlLock) == []  # the dead runner's lock is released

    # a new deploy is refused, naming the statement and the command that settles it
    code, out, err = cli(capsys, "--as", "alice", "order", "deploy", str(order_id), "--json")
    assert code == 1
    refusal = " ".join(err.split())
    assert "SQL orders:1 is unknown on database shop-test" in refusal, err
    assert f"`golive sql resolve {order_id} orders:1 --as executed|retry`" in refusal, err
    assert out == ""  # refused before anything started: the deployment stays resumable
    (still,) = rows(world.runtime, Deployment, Deployment.order_id == order_id)
    assert still.status == "interrupted"
    assert len(world.executions(order_id)) == 1
    assert world.state(order_id) == "test:failed"

    code, out, err = cli(capsys, "--as", "rita", "sql", "resolve", str(order_id), "orders:1",
                         "--as", outcome)
    assert code == 0, err
    assert out.strip() == (f"order {order_id}: statement orders:1 on shop-test resolved as "
                           f"{outcome}")

    code, out, err = cli(capsys, "--as", "alice", "order", "deploy", str(order_id), "--json")
    assert code == 0, err
    deployment_id = json.loads(out)["id"]
    assert deployment_id == killed.id  # the interrupted deployment resumed, not a new one
    assert world.state(order_id) == "test:deployed"
    executions = world.executions(order_id)
    if outcome == "executed":  # taken as done: not run again
        assert [(e.status, e.message.split(" at ")[0]) for e in executions] == [
            ("success", "resolved by rita as executed")]
        assert world.sql_step(deployment_id).message == "0 ran, 1 already ran"
    else:  # run again, in full
        assert [e.status for e in executions] == ["failed", "success"]
        assert executions[0].message.startswith("resolved by rita as retry")
        assert executions[1].duration_ms is not None and executions[1].duration_ms >= 9_900
        assert world.sql_step(deployment_id).message == "1 ran, 0 already ran"
