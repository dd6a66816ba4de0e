"""A router that answers each path both with and without its trailing slash.

The original product's paths end in "/" and its clients send them so; others leave the
slash off. Redirecting (Starlette's default) would turn a POST into a second request
and lose the Authorization header on some clients, so both forms are routed directly.
Only the declared form appears in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


class SlashTolerantRouter(APIRouter):
    """An APIRouter that also registers every path with its trailing slash toggled."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        """Register `path` and, hidden from the docs, its twin with the slash toggled."""
        super().add_api_route(path, endpoint, **kwargs)
        twin = path[:-1] if path.endswith("/") else f"{path}/"
        if (self.prefix + twin).startswith("/"):  # "" (prefix-less "/") is no path
            super().add_api_route(twin, endpoint, **{**kwargs, "include_in_schema": False})
