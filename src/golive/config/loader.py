"""Reading golive.yaml: YAML with line numbers, ${VAR} expansion, schema validation.

Every problem becomes a ``ConfigError`` naming the file, the line and the field
path (``projects[0].services[1].stages.prod.hosts``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from golive.config.schema import GoliveConfig
from golive.errors import ConfigError

Loc = tuple[str | int, ...]
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ESCAPED = "$${"
"""``$${NAME}`` in the file is the literal text ``${NAME}`` (e.g. for a shell command)."""


@dataclass
class LoadedConfig:
    config: GoliveConfig
    file: str
    lines: dict[Loc, int] = field(default_factory=dict)
    templates: dict[Loc, str] = field(default_factory=dict)
    """The text before ${VAR} expansion, for each value that contained a variable."""

    def line_of(self, loc: Loc) -> int | None:
        return line_of(self.lines, loc)

    def error(self, loc: Loc, problem: str) -> ConfigError:
        return ConfigError(problem, file=self.file, line=self.line_of(loc), path=format_loc(loc))


def format_loc(loc: Loc) -> str:
    """('projects', 0, 'services') → 'projects[0].services'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc``, or of its nearest enclosing value that has one."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _node_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _node_lines(value_node, (*loc, key), lines)
            lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _node_lines(item, (*loc, index), lines)


def parse_yaml(text: str, file: str) -> tuple[Any, dict[Loc, int]]:
    """The YAML document's data and the line of every value in it."""
    try:
        loader = yaml.SafeLoader(text)  # checks the characters: may raise ReaderError
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {' '.join(str(exc).split())}", file=file) from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"YAML syntax error: {exc.problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {' '.join(str(exc).split())}", file=file) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    return data, lines


def expand_variables(
    data: Any, env: Mapping[str, str], loc: Loc, templates: dict[Loc, str], problems: list[Loc]
) -> Any:
    """``data`` with ${VAR} replaced from ``env``; records templates and unset variables."""
    if isinstance(data, dict):
        return {k: expand_variables(v, env, (*loc, k), templates, problems)
                for k, v in data.items()}
    if isinstance(data, list):
        return [expand_variables(v, env, (*loc, i), templates, problems)
                for i, v in enumerate(data)]
    if isinstance(data, str) and VARIABLE.search(data):
        templates[loc] = data

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append((*loc, f"${{{name}}}"))
                return ""
            return env[name]

        return VARIABLE.sub(substitute, data).replace(ESCAPED, "${")
    if isinstance(data, str) and ESCAPED in data:
        return data.replace(ESCAPED, "${")
    return data


def _friendly(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing field"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def validate(data: Any, file: str, lines: dict[Loc, int]) -> GoliveConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping with hosts, databases, projects", file=file,
                          line=1)
    try:
        return GoliveConfig.model_validate(data)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
            messages.append(
                str(ConfigError(_friendly(error), file=file, line=line_of(lines, loc),
                                path=format_loc(loc)))
            )
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        err = ConfigError(_friendly(first), file=file, line=line_of(lines, loc),
                          path=format_loc(loc))
        err.message = "\n".join(messages)
        err.args = (err.message,)
        raise err from None


def load_text(text: str, file: str, env: Mapping[str, str] | None = None) -> LoadedConfig:
    data, lines = parse_yaml(text, file)
    templates: dict[Loc, str] = {}
    unset: list[Loc] = []
    data = expand_variables(data, os.environ if env is None else env, (), templates, unset)
    if unset:
        loc, variable = unset[0][:-1], str(unset[0][-1])
        raise ConfigError(
            f"environment variable {variable[2:-1]} is not set (used as {variable}); "
            "set it, or write the value in the file",
            file=file, line=line_of(lines, loc), path=format_loc(loc),
        )
    config = validate(data, file, lines)
    return LoadedConfig(config, file, lines, templates)


def load_file(path: Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", file=str(path)) from None
    return load_text(text, str(path), env)
