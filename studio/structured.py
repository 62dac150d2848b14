"""The structured editor: common changes made in forms and written back as canonical DSL text."""
from __future__ import annotations

routes: list = []
