"""Agents benchmark: 20 concurrent small deployments, inline in the server vs 2 Celery agents.

    .venv/bin/python bench/agents.py [--orders 20] [--repeat 3] [--clients 10] [--pause 0.25]
                                     [--agents 2] [--concurrency 4] [--modes inline,celery]
                                     [--nice 0]
                                     [--broker redis://127.0.0.1:6379/0] [--json FILE]

Per mode and repeat, a fresh world on a scratch PostgreSQL store (``make services``;
``GOLIVE_TEST_POSTGRES_URL`` overrides it): ``--orders`` small git repositories (one
service each, artifact mode, build ``cp -r src dist``, one SQL statement per order on a
scratch PostgreSQL target), one local host, one project with the single stage ``prod``,
one submitted order per service. The real server runs in a subprocess (``golive server``,
its own interpreter), with

* ``inline``: ``GOLIVE_TASKS=inline`` — the server's own pool of 8 threads deploys;
* ``celery``: ``GOLIVE_TASKS=celery`` on ``--broker`` with ``--agents`` real ``golive
  agent`` processes (``--concurrency`` threads each, their own GOLIVE_HOME), at niceness
  ``--nice`` (on one machine the agents share the server's cores; ``--nice 19`` lets the
  server's requests go first, roughly as if the agents ran elsewhere).

Then ``--clients`` asyncio clients read ``GET /orders`` and ``GET /orders/{n}``, each
waiting ``--pause`` seconds after an answer (so that reads alone do not saturate the
server and the latency shows what the deployments cost it), while every order is deployed
at once (``POST /orders/{n}/deploy``, one request
per order from a thread each); the window ends when the last deployment has ended.
Printed per mode: the total time from the first request to the last deployment's end,
the API latency p50 / p99 in that window, the CPU time the server process used in it,
how many requests, and failures; then the
medians over the repeats and celery / inline ratios. Exits 1 when a deployment did not
succeed. Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select, text

from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime, open_runtime
from golive.settings import Settings
from golive.store.models import Deployment
from golive.testing.brokers import forget_queues
from golive.testing.databases import scratch_database
from golive.testing.server import api_token, bearer, free_port
from golive.testing.world import apply_config, file_order, local_hosts, make_repo

GOLIVE = Path(sys.executable).parent / "golive"
API = "/api/v1"
ENDED = ("succeeded", "failed", "interrupted")


def world(root: Path, runtime: Runtime, orders: int, target: str) -> list[int]:
    """``orders`` services and one submitted order each; the order ids."""
    services = []
    for i in range(orders):
        name = f"svc{i:02d}"
        repo = make_repo(root, name, {"src/index.html": f"{name} v1\n" * 200},
                         branches={"feature/x": {"src/index.html": f"{name} v2\n" * 200}})
        services.append({"name": name, "repo": repo.url, "build": "cp -r src dist",
                         "pack": ["dist"], "stages": {"prod": {
                             "path": f"srv/{name}", "hosts": ["h1"], "database": "hits"}}})
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["h1"]), "databases": [{"name": "hits", "url": target}],
        "projects": [{"name": "shop", "stages": ["prod"], "services": services}]})
    return [file_order(runtime, "admin", "shop", [ItemRequest(
        f"svc{i:02d}", "feature/x", f"INSERT INTO hits (n) VALUES ({i});")])
        for i in range(orders)]


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        child = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_until(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ready(log: Path) -> bool:
    return log.exists() and " ready." in log.read_text(errors="replace")


async def read_load(url: str, token: str, orders: list[int], clients: int, pause: float,
                    stop: threading.Event) -> tuple[list[float], int]:
    """Clients reading the order list and details until ``stop``: latencies (ms), errors."""
    latencies: list[float] = []
    errors = 0

    async def client(seed: int) -> None:
        nonlocal errors
        pick = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, headers=bearer(token), timeout=30) as http:
            while not stop.is_set():
                path = "/orders" if pick.random() < 0.5 else f"/orders/{pick.choice(orders)}"
                started = time.perf_counter()
                try:
                    answer = await http.get(API + path)
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - started) * 1000)
                errors += 0 if ok else 1
                await asyncio.sleep(pause)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, errors


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def one_run(mode: str, options: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="golive-agents-")))
        store = stack.enter_context(scratch_database("postgresql", root))
        target = stack.enter_context(scratch_database("postgresql", root))
        engine = create_engine(target)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE hits (n INTEGER NOT NULL)"))
        engine.dispose()
        prefix = f"golive-bench-{uuid.uuid4().hex[:8]}"
        stack.callback(forget_queues, options.broker, prefix)
        env = {**os.environ, "GOLIVE_DATABASE_URL": store,
               "GOLIVE_SECRET_KEY": Fernet.generate_key().decode(), "GOLIVE_TASKS": mode,
               "GOLIVE_BROKER_URL": options.broker, "GOLIVE_QUEUE_PREFIX": prefix}
        for name in ("GOLIVE_URL", "GOLIVE_TOKEN", "GOLIVE_USER"):
            env.pop(name, None)
        runtime = open_runtime(Settings(home=root / "bench", database_url=store,
                                        secret_key=env["GOLIVE_SECRET_KEY"]))
        stack.callback(runtime.close)
        orders = world(root, runtime, options.orders, target)
        token = api_token(runtime, "admin")
        port = free_port()
        server_log = root / "server.log"
        server = stack.enter_context(process(
            [str(GOLIVE), "server", "--port", str(port)],
            {**env, "GOLIVE_HOME": str(root / "server")}, server_log))
        url = f"http://127.0.0.1:{port}"
        wait_until("the server", lambda: _answers(f"{url}/healthz"))
        if mode == "celery":
            for n in range(options.agents):
                log = root / f"agent-{n}.log"
                stack.enter_context(process(
                    [*(["nice", "-n", str(options.nice)] if options.nice else []),
                     str(GOLIVE), "agent", "--name", f"bench-{n}",
                     "--concurrency", str(options.concurrency)],
                    {**env, "GOLIVE_HOME": str(root / f"agent-{n}")}, log))
                wait_until(f"agent {n}", lambda log=log: _ready(log))
        return measure(runtime, url, token, orders, options, server.pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(runtime: Runtime, url: str, token: str, orders: list[int],
            options: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    stop = threading.Event()
    found: dict[str, Any] = {}
    loader = threading.Thread(target=lambda: found.update(zip(
        ("latencies", "errors"),
        asyncio.run(read_load(url, token, orders, options.clients, options.pause, stop)),
        strict=True)))
    loader.start()
    time.sleep(1.0)  # the readers are connected and warm before the burst
    started, cpu_before = time.monotonic(), cpu_seconds(server_pid)

    def deploy(order: int) -> int:
        answer = httpx.post(f"{url}{API}/orders/{order}/deploy", json={},
                            headers=bearer(token), timeout=60)
        answer.raise_for_status()
        return int(answer.json()["id"])

    with ThreadPoolExecutor(max_workers=len(orders)) as pool:
        ids = list(pool.map(deploy, orders))
    statuses: dict[int, str] = {}

    def all_ended() -> bool:
        with runtime.store.session() as session:
            statuses.update((row.id, row.status) for row in session.execute(
                select(Deployment.id, Deployment.status).where(Deployment.id.in_(ids))))
        return all(statuses.get(i) in ENDED for i in ids)

    wait_until("every deployment to end", all_ended, timeout=600)
    took = time.monotonic() - started
    server_cpu = cpu_seconds(server_pid) - cpu_before
    stop.set()
    loader.join()
    latencies = found["latencies"]
    return {"seconds": round(took, 2), "requests": len(latencies),
            "p50_ms": round(percentile(latencies, 0.50), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1), "errors": found["errors"],
            "server_cpu_s": round(server_cpu, 2),
            "succeeded": sum(1 for i in ids if statuses[i] == "succeeded"),
            "deployments": len(ids)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.25,
                        help="seconds a client waits after each answer")
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--modes", default="inline,celery")
    parser.add_argument("--nice", type=int, default=0,
                        help="run the agents at this niceness (19: as if on other machines)")
    parser.add_argument("--broker", default=os.environ.get("GOLIVE_TEST_REDIS_URL",
                                                           "redis://127.0.0.1:6379/0"))
    parser.add_argument("--json", type=Path, default=None)
    options = parser.parse_args()
    modes = options.modes.split(",")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for repeat in range(options.repeat):
        for mode in modes:  # interleaved: a noisy minute hurts both modes alike
            result = one_run(mode, options)
            runs[mode].append(result)
            print(f"run {repeat + 1} {mode:7} {result['seconds']:6.2f} s  "
                  f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
                  f"server CPU {result['server_cpu_s']:5.2f} s  "
                  f"{result['requests']} requests, {result['errors']} errors, "
                  f"{result['succeeded']}/{result['deployments']} succeeded", flush=True)
    medians = {mode: {key: statistics.median(r[key] for r in results)
                      for key in ("seconds", "p50_ms", "p99_ms", "server_cpu_s")}
               for mode, results in runs.items()}
    print("\nmedians:")
    for mode, values in medians.items():
        print(f"  {mode:7} {values['seconds']:6.2f} s  p50 {values['p50_ms']:6.1f} ms  "
              f"p99 {values['p99_ms']:7.1f} ms  server CPU {values['server_cpu_s']:5.2f} s")
    if "inline" in medians and "celery" in medians:
        ratios = {key: medians["celery"][key] / medians["inline"][key]
                  for key in ("seconds", "p50_ms", "p99_ms", "server_cpu_s")}
        print(f"  celery / inline: time x{ratios['seconds']:.2f}, p50 x{ratios['p50_ms']:.2f}, "
              f"p99 x{ratios['p99_ms']:.2f}, server CPU x{ratios['server_cpu_s']:.2f}")
    out = options.json or Path(__file__).parent / ".cache" / f"agents-{int(time.time())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "medians": medians}, indent=2))
    failed = any(r["succeeded"] != r["deployments"] for rs in runs.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
