"""The stream worker: imports every agent module so Faust registers them."""

from streams import (  # noqa: F401  (registration by import)
    attempts,
    code_runner,
    leaderboard,
    proctoring,
)
from streams.app import app

__all__ = ["app"]
