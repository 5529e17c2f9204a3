"""The demo: a scratch world in $GOLIVE_HOME/demo (repositories, local hosts,
databases), the example golive.yaml applied, and an example order filed.

Everything the demo makes lives under one folder, made anew on every run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from golive.errors import GoliveError

DEMO_SERVICES = {
    "web": {"src/index.html": "<h1>golive demo shop</h1>\n", "README.md": "web\n"},
    "orders": {"app/orders.py": "def total(items):\n    return sum(items)\n",
               "README.md": "orders\n"},
}
FEATURE_BRANCH = "feature/coupons"


@dataclass
class DemoWorld:
    root: Path
    config_file: Path
    sql_file: Path


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "golive demo", "GIT_AUTHOR_EMAIL": "demo@golive",
           "GIT_COMMITTER_NAME": "golive demo", "GIT_COMMITTER_EMAIL": "demo@golive"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise GoliveError(f"demo: git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")


def _make_repo(root: Path, name: str, files: dict[str, str]) -> None:
    """A bare repository ``repos/<name>.git`` with main and a feature branch."""
    work = root / "work" / name
    work.mkdir(parents=True)
    _git(work, "init", "-q", "-b", "main")
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text, encoding="utf-8")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", f"{name}: first version")
    _git(work, "checkout", "-q", "-b", FEATURE_BRANCH)
    (work / "FEATURE").write_text("coupons\n", encoding="utf-8")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", f"{name}: coupons")
    _git(root / "repos", "clone", "-q", "--bare", str(work), f"{name}.git")


def commit_fix(world: DemoWorld, service: str) -> None:
    """A developer's fix on the feature branch of ``service``, pushed to its repository."""
    work = world.root / "work" / service
    (work / "src").mkdir(exist_ok=True)
    (work / "src" / "coupon.html").write_text("<p>10% off with WELCOME;10</p>\n",
                                              encoding="utf-8")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", f"{service}: coupon banner")
    _git(work, "push", "-q", str(world.root / "repos" / f"{service}.git"), FEATURE_BRANCH)


def build_world(home: Path) -> DemoWorld:
    """Make $GOLIVE_HOME/demo from scratch: repos, host folders, database folder."""
    root = home / "demo"
    if root.exists():
        shutil.rmtree(root)
    for sub in ("repos", "hosts", "db"):
        (root / sub).mkdir(parents=True)
    for name, files in DEMO_SERVICES.items():
        _make_repo(root, name, files)
    examples = resources.files("golive.examples")
    config_file = root / "golive.yaml"
    config_file.write_text(examples.joinpath("demo.yaml").read_text(encoding="utf-8"))
    sql_file = root / "coupons.sql"
    sql_file.write_text(examples.joinpath("demo.sql").read_text(encoding="utf-8"))
    return DemoWorld(root, config_file, sql_file)
