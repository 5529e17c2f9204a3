"""The bases of every schema: requests refuse unknown fields, responses read attributes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Done(Response):
    """An action that changes something and has nothing more to tell than this line."""

    message: str
