"""The stream worker: imports every agent module so Faust registers them."""

from streams import attempts, code_runner, leaderboard  # noqa: F401  (registration by import)
from streams.app import app

__all__ = ["app"]
