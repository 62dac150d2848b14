"""Publishing: the project's files compiled, compared with the live version, tested, and activated."""
from __future__ import annotations

routes: list = []
