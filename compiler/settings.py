"""Project settings (flowdesk.yaml): environments and the names of secrets.

    default_environment: test
    secrets: [BILLING_TOKEN]
    environments:
      test:       {HOTLINE: "4008001000", BILLING_API: "http://127.0.0.1:8089"}
      production: {HOTLINE: "10086",      BILLING_API: "https://billing.example.net"}
"""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dsl.ast import Pos
from dsl.diagnostics import Diagnostic

SETTINGS_FILE = "flowdesk.yaml"


class ProjectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_environment: str = "test"
    secrets: list[str] = []
    environments: dict[str, dict[str, str | int | float | bool]] = {}


def load_settings(root: Path) -> tuple[ProjectSettings, list[Diagnostic]]:
    path = root / SETTINGS_FILE
    if not path.is_file():
        return ProjectSettings(), []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ProjectSettings.model_validate(data), []
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        pos = Pos(mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2) if mark else Pos(1, 1, 1, 1)
        return ProjectSettings(), [Diagnostic(SETTINGS_FILE, pos, "E120", f"flowdesk.yaml is not valid YAML: {getattr(error, 'problem', error)}")]
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return ProjectSettings(), [Diagnostic(SETTINGS_FILE, Pos(1, 1, 1, 1), "E120",
                                              f"flowdesk.yaml: {where}: {first['msg']}",
                                              hint="see docs/language.md, section Environments")]
