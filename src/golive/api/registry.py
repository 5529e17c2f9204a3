"""Every action golive offers, as data: one table that makes the REST routes
(``api/routes.py``), the remote CLI's requests (``cli/client.py``) and the permission
matrix test.

An operation is a plain function ``run(work, **params) -> data``. Its parameters say
where each value travels: the names in ``path`` are path parameters, a pydantic model
is the JSON body, anything else is a query parameter — the same rules FastAPI applies,
so the function's signature is the route's signature. Its result is validated by
``response`` (a schema from ``api/schemas.py``): the API and the local CLI both pass it
through :func:`to_json`, so a command prints the same thing wherever it runs.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, TypeAdapter
from sqlalchemy.orm import Session

from golive.services.runtime import Runtime
from golive.store.models import User


@dataclass
class Work:
    """What an operation gets: the runtime, one transaction, the acting user, and the
    deployments it asked to start once that transaction is committed."""

    runtime: Runtime
    session: Session
    user: User
    started: list[int] = field(default_factory=list)

    def start(self, deployment_id: int) -> None:
        self.started.append(deployment_id)


@dataclass(frozen=True)
class Operation:
    name: str
    """``resource.verb``: ``order.show``, ``order.deploy``."""
    method: str
    path: str
    """Under ``/api/v1``, with ``{param}`` placeholders."""
    run: Callable[..., Any]
    response: Any
    status: int = 200
    reads_only: bool = False
    """True for GETs: no audit entry, no CSRF check."""

    @cached_property
    def params(self) -> dict[str, inspect.Parameter]:
        """The parameters after ``work``, their annotations resolved to types."""
        hints = typing.get_type_hints(self.run)
        found = list(inspect.signature(self.run).parameters.values())[1:]
        return {p.name: p.replace(annotation=hints[p.name]) for p in found}

    @cached_property
    def path_params(self) -> tuple[str, ...]:
        return tuple(name for name in self.params if "{" + name + "}" in self.path)

    @cached_property
    def body_param(self) -> str | None:
        return next((name for name, p in self.params.items()
                     if isinstance(p.annotation, type) and issubclass(p.annotation, BaseModel)),
                    None)

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.response)

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.run) or self.name).split("\n")[0]


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, method: str, path: str, response: Any, *, status: int = 200
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``run`` as the operation ``name``: ``@operation("order.show", "GET",
    "/orders/{number}", OrderDetail)``."""
    def register(run: Callable[..., Any]) -> Callable[..., Any]:
        if name in OPERATIONS:
            raise ValueError(f"operation {name} is registered twice")
        OPERATIONS[name] = Operation(name, method, path, run, response, status,
                                     reads_only=method == "GET")
        return run
    return register


def to_json(op: Operation, result: Any) -> Any:
    """``result`` checked against the operation's response schema, as JSON-ready data."""
    if op.response is None:
        return None
    return op.adapter.dump_python(op.adapter.validate_python(result), mode="json")


def call_local(work: Work, name: str, params: dict[str, Any]) -> Any:
    """Run an operation in this process (the CLI without a server); JSON-ready result."""
    op = OPERATIONS[name]
    return to_json(op, op.run(work, **as_params(op, params)))


def as_params(op: Operation, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` for ``op.run``: a body given as a dict validated into its model (a
    pydantic ValidationError when it does not fit)."""
    return {key: _as_param(op.params[key].annotation, value) for key, value in params.items()}


def _as_param(annotation: Any, value: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(
            value, dict):
        return annotation.model_validate(value)
    return value
