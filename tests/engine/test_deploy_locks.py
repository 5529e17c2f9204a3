"""Deployment locks: one deployment at a time per (service, stage, lane), on every store.

A deployment is made slow by its build, which waits (on the host) while a "hold" file
of its order exists; the test says when it may go on, so no sleep decides anything."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from golive.cli.main import main
from golive.errors import Busy
from golive.services import locks, requests, users
from golive.services.deploy import run_deployment
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import DeployLock, Deployment, Service, utcnow
from golive.testing.world import (
    apply_config,
    deploy,
    file_order,
    git,
    host_root,
    local_hosts,
    make_repo,
    rows,
)

ORDERS = {"a": "web", "b": "web", "c": "web", "api": "api", "e": "app", "f": "app",
          "g": "app"}
MEMBERS = [{"user": "alice", "roles": ["developer"]},
           {"user": "carol", "roles": ["developer", "tester"]}]


def gate_build(gates: Path) -> str:
    hold, started = f"{gates}/hold-$GOLIVE_ORDER_ID", f"{gates}/started-$GOLIVE_ORDER_ID"
    return (f"if [ -e {hold} ]; then touch {started}; i=0; while [ -e {hold} ]; do "
            "i=$((i+1)); [ $i -lt 3000 ] || exit 9; sleep 0.02; done; fi")


def world(tmp_path: Path, runtime: Runtime) -> dict[str, int]:
    """web and api on test (h1, no lanes), app with lanes t1/t2; an order per entry."""
    gates = tmp_path / "gates"
    gates.mkdir()
    repos = {name: make_repo(tmp_path, name, {"index.html": "main\n"},
                             branches={f"feature/{k}": {"which.txt": f"{k}\n"}
                                       for k, svc in ORDERS.items() if svc == name})
             for name in ("web", "api", "app")}

    def service(name: str, test: dict[str, object]) -> dict[str, object]:
        return {"name": name, "repo": repos[name].url, "build": gate_build(gates),
                "stages": {"test": {"mode": "checkout", "path": f"srv/{name}", **test}}}

    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1", "h2"]),
        "projects": [{"name": "shop", "stages": ["test", "prod"], "members": MEMBERS,
                      "services": [
                          service("web", {"hosts": ["h1"]}), service("api", {"hosts": ["h1"]}),
                          service("app", {"lanes": {"t1": {"hosts": ["h1"]},
                                                    "t2": {"hosts": ["h2"]}}})]}]})
    return {k: file_order(runtime, "alice", "shop", [ItemRequest(svc, f"feature/{k}")])
            for k, svc in ORDERS.items()}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@contextmanager
def slow_deploy(tmp_path: Path, runtime: Runtime, order_id: int) -> Iterator[None]:
    """Deployment of ``order_id`` running in a thread, held in its build; on exit it is
    let go and must have succeeded."""
    hold, started = (tmp_path / "gates" / f"{name}-{order_id}" for name in ("hold", "started"))
    hold.touch()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(deploy, runtime, order_id, "alice")
        try:
            wait_for(lambda: started.exists() or future.done(), "the build to start")
            assert not future.done(), future.result()
            yield
        finally:
            hold.unlink()
        assert future.result(timeout=60)[1], rows(runtime, Deployment)[-1].error


def spy_on_waits(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a request waiting for locks (``wait_until_free``) found one held."""
    waiting = threading.Event()
    first_held = locks.first_held

    def spy(*args: object, **kwargs: object) -> object:
        found = first_held(*args, **kwargs)  # type: ignore[arg-type]
        if found is not None:
            waiting.set()
        return found

    monkeypatch.setattr(locks, "first_held", spy)
    return waiting


def ask(runtime: Runtime, order_id: int, by: str = "alice", **options: object) -> int:
    """Request a deployment (not run); its id."""
    with runtime.store.session() as session:
        deployment = requests.request_deployment(session, order_id,
                                                 users.acting_user(session, by), **options)
        session.commit()
        return deployment.id


def refused(runtime: Runtime, order_id: int, by: str = "alice", **options: object) -> Busy:
    with runtime.store.session() as session, pytest.raises(Busy) as info:
        requests.request_deployment(session, order_id, users.acting_user(session, by),
                                    **options)
    return info.value


def state(runtime: Runtime, order_id: int) -> str:
    with runtime.store.session() as session:
        return get_order(session, order_id).state


def holders(runtime: Runtime) -> dict[tuple[str, str], int | None]:
    """(service, lane) → the deployment holding its test lock."""
    names = {svc.id: svc.name for svc in rows(runtime, Service)}
    return {(names[lock.service_id], lock.lane): lock.deployment_id
            for lock in rows(runtime, DeployLock)}


def test_a_running_deployment_refuses_another_until_it_ends(
    tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    o = world(tmp_path, runtime)
    with slow_deploy(tmp_path, runtime, o["a"]):
        (running,) = rows(runtime, Deployment)
        assert running.status == "running"
        busy = refused(runtime, o["b"])
        assert busy.order_id == o["a"]
        assert busy.message.startswith(f"service web on test is being deployed by order "
                                       f"{o['a']}")
        assert f"deployment {running.id} by alice" in busy.message
        assert state(runtime, o["b"]) == "submitted"
        assert rows(runtime, Deployment, Deployment.order_id == o["b"]) == []
        (lock,) = rows(runtime, DeployLock)
        assert (lock.deployment_id, lock.order_id, lock.lane) == (running.id, o["a"], "")
    (lock,) = rows(runtime, DeployLock)  # the end of the deployment freed it
    assert (lock.deployment_id, lock.order_id, lock.runner, lock.heartbeat_at) == (
        None, None, "", None)

    # B asks with a wait while A's next deployment holds the lock; it goes once A ends
    again = ask(runtime, o["a"])
    waiting = spy_on_waits(monkeypatch)
    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(ask, runtime, o["b"], lock_wait=60)
        wait_for(lambda: waiting.is_set() or asked.done(), "B to wait for the lock")
        assert not asked.done(), asked.result()
        assert run_deployment(runtime, again)
        second = asked.result(timeout=60)
    assert rows(runtime, DeployLock)[0].deployment_id == second
    assert run_deployment(runtime, second)
    assert state(runtime, o["b"]) == "test:deployed"
    wc = host_root(tmp_path, "h1") / "srv/web"
    assert git(wc, "rev-parse", "--abbrev-ref", "HEAD") == "feature/b"
    assert rows(runtime, DeployLock)[0].deployment_id is None


@pytest.mark.parametrize(("store_url", "wait"), [
    pytest.param("postgresql", 0.0, id="postgresql"),
    pytest.param("mariadb", 0.0, id="mariadb"),
    pytest.param("postgresql", 60.0, id="postgresql-wait"),
    pytest.param("mariadb", 60.0, id="mariadb-wait"),
], indirect=["store_url"])
def test_two_requests_racing_for_a_free_lock(tmp_path: Path, runtime: Runtime, wait: float,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    o = world(tmp_path, runtime)
    both_there = threading.Barrier(2, timeout=30)
    calls = itertools.count()
    acquire = locks.acquire

    def in_step(*args: object, **kwargs: object) -> None:
        if next(calls) < 2:
            both_there.wait()  # both found the lock free and wrote their deployment
        acquire(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(locks, "acquire", in_step)
    waiting = spy_on_waits(monkeypatch)

    def one(order_id: int) -> int | Busy:
        try:
            return ask(runtime, order_id, lock_wait=wait)
        except Busy as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        futures = {k: pool.submit(one, o[k]) for k in ("a", "b")}
        wait_for(lambda: any(f.done() for f in futures.values()), "a request to end")
        (won,) = (k for k, f in futures.items() if f.done() and isinstance(f.result(), int))
        lost = "b" if won == "a" else "a"
        first = futures[won].result()
        assert isinstance(first, int)
        if wait:  # the loser waits for the winner's deployment to end, then goes
            wait_for(lambda: waiting.is_set() or futures[lost].done(), "the loser to wait")
            assert not futures[lost].done(), futures[lost].result()
            assert run_deployment(runtime, first)
            second = futures[lost].result(timeout=60)
            assert isinstance(second, int), second
            (lock,) = rows(runtime, DeployLock)
            assert (lock.deployment_id, lock.order_id) == (second, o[lost])
            return
        loss = futures[lost].result(timeout=60)
    assert isinstance(loss, Busy), loss
    assert loss.order_id == o[won]
    assert state(runtime, o[won]) == "test:deploying"
    assert state(runtime, o[lost]) == "submitted"
    assert [d.order_id for d in rows(runtime, Deployment)] == [o[won]]
    (lock,) = rows(runtime, DeployLock)
    assert (lock.deployment_id, lock.order_id) == (first, o[won])


def test_a_dead_or_silent_holder_does_not_keep_its_lock(tmp_path: Path,
                                                        runtime: Runtime) -> None:
    o = world(tmp_path, runtime)
    first = ask(runtime, o["a"])
    assert refused(runtime, o["b"]).order_id == o["a"]

    def runner_of(deployment_id: int, runner: str, beat_age: timedelta) -> None:
        with runtime.store.session() as session:
            session.execute(update(Deployment).where(Deployment.id == deployment_id)
                            .values(runner=runner))
            session.execute(update(DeployLock).where(DeployLock.deployment_id == deployment_id)
                            .values(runner=runner, heartbeat_at=utcnow() - beat_age))
            session.commit()

    # the holder's process is gone (same host, no such pid): the lock is free
    runner_of(first, f"{socket.gethostname()}:999999:1", timedelta(0))
    second = ask(runtime, o["b"])
    assert rows(runtime, DeployLock)[0].deployment_id == second

    # a holder on another machine is alive while its heartbeat is fresh, not after
    runner_of(second, "elsewhere.invalid:4242:1", locks.STALE_AFTER - timedelta(seconds=30))
    assert refused(runtime, o["c"]).order_id == o["b"]
    runner_of(second, "elsewhere.invalid:4242:1", locks.STALE_AFTER + timedelta(seconds=30))
    third = ask(runtime, o["c"])
    (lock,) = rows(runtime, DeployLock)
    assert (lock.deployment_id, lock.order_id) == (third, o["c"])


def test_other_services_and_other_lanes_do_not_block(tmp_path: Path,
                                                     runtime: Runtime) -> None:
    o = world(tmp_path, runtime)
    web = ask(runtime, o["a"])
    api = ask(runtime, o["api"])  # same stage and host, another service
    assert refused(runtime, o["b"]).order_id == o["a"]
    t1 = ask(runtime, o["e"])
    t2 = ask(runtime, o["f"])
    lanes = {d.id: d.lane for d in rows(runtime, Deployment)}
    assert (lanes[t1], lanes[t2]) == ("t1", "t2")
    assert holders(runtime) == {("web", ""): web, ("api", ""): api, ("app", "t1"): t1,
                                ("app", "t2"): t2}
    # taking lane t1 over does not take its lock while E's deployment holds it
    busy = refused(runtime, o["g"], "carol", lane="t1", take_over=True)
    assert busy.order_id == o["e"] and "service app on test (lane t1)" in busy.message


def test_cli_deploy_refused_by_a_running_deployment(
    tmp_path: Path, sqlite_runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = sqlite_runtime
    o = world(tmp_path, runtime)
    with slow_deploy(tmp_path, runtime, o["a"]):
        code = main(["--as", "alice", "order", "deploy", str(o["b"]), "--wait", "0"])
        err = capsys.readouterr().err
        assert code == 1, err
        assert f"service web on test is being deployed by order {o['a']}" in err
        assert "Traceback" not in err
        assert state(runtime, o["b"]) == "submitted"
