"""Cross references in golive.yaml: names that must be defined and must be distinct."""

from __future__ import annotations

from collections.abc import Iterable

from golive.config.loader import LoadedConfig, Loc
from golive.config.schema import ProjectSpec


def _distinct(
    loaded: LoadedConfig, loc: Loc, names: Iterable[str], what: str, key: str = "name"
) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise loaded.error((*loc, index, key), f"{what} {name!r} is defined twice")
        seen.add(name)


def check_references(
    loaded: LoadedConfig, stored_hosts: set[str], stored_databases: set[str]
) -> None:
    """Raise a ConfigError for the first duplicate or undefined name in the file."""
    config = loaded.config
    _distinct(loaded, ("hosts",), (h.name for h in config.hosts), "host")
    _distinct(loaded, ("databases",), (d.name for d in config.databases), "database")
    _distinct(loaded, ("projects",), (p.name for p in config.projects), "project")
    hosts = stored_hosts | {h.name for h in config.hosts}
    databases = stored_databases | {d.name for d in config.databases}
    for index, project in enumerate(config.projects):
        _check_project(loaded, ("projects", index), project, hosts, databases)


def _channel_names(project: ProjectSpec) -> list[str]:
    return [c.name or f"{c.type}-{i + 1}" for i, c in enumerate(project.notify)]


def _check_project(
    loaded: LoadedConfig, loc: Loc, project: ProjectSpec, hosts: set[str], databases: set[str]
) -> None:
    _distinct(loaded, (*loc, "services"), (s.name for s in project.services), "service")
    _distinct(loaded, (*loc, "notify"), _channel_names(project), "channel")
    _distinct(loaded, (*loc, "members"), (m.user for m in project.members), "member", "user")
    for s_index, service in enumerate(project.services):
        for stage_name, stage in service.stages.items():
            stage_loc: Loc = (*loc, "services", s_index, "stages", stage_name)
            if stage_name not in project.stages:
                raise loaded.error(stage_loc, f"stage {stage_name!r} is not one of the "
                                   f"project's stages: {', '.join(project.stages)}")
            _check_hosts(loaded, (*stage_loc, "hosts"), stage.hosts, hosts)
            _check_hosts(loaded, (*stage_loc, "job_hosts"), stage.job_hosts, hosts)
            for lane_name, lane in stage.lanes.items():
                _check_hosts(loaded, (*stage_loc, "lanes", lane_name, "hosts"), lane.hosts, hosts)
            if stage.database and stage.database not in databases:
                raise loaded.error((*stage_loc, "database"), f"database {stage.database!r} is "
                                   "not defined: add it under databases")


def _check_hosts(loaded: LoadedConfig, loc: Loc, names: list[str], hosts: set[str]) -> None:
    for index, name in enumerate(names):
        if name not in hosts:
            raise loaded.error((*loc, index), f"host {name!r} is not defined: add it under hosts")
        if names.index(name) != index:
            raise loaded.error((*loc, index), f"host {name!r} is listed twice")

