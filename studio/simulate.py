"""The simulator panel: a test call through the project's flows, walked from the browser."""
from __future__ import annotations

routes: list = []
