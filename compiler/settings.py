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
from dsl.diagnostics import Diagnostic, did_you_mean

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
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
        return ProjectSettings.model_validate(data), []
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        pos = Pos(mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2) if mark else Pos(1, 1, 1, 1)
        return ProjectSettings(), [Diagnostic(SETTINGS_FILE, pos, "E120", f"flowdesk.yaml is not valid YAML: {getattr(error, 'problem', error)}")]
    except ValidationError as error:
        return ProjectSettings(), [_describe(e, text) for e in error.errors()]


def _describe(error: dict, text: str) -> Diagnostic:
    key = str(error["loc"][-1]) if error["loc"] else ""
    where = ".".join(str(p) for p in error["loc"])
    pos = _line_of(text, key)
    if error["type"] == "extra_forbidden":
        known = list(ProjectSettings.model_fields)
        return Diagnostic(SETTINGS_FILE, pos, "E120", f"unknown setting '{where}' in flowdesk.yaml",
                          hint=did_you_mean(key, known) or f"the settings are: {', '.join(known)}")
    return Diagnostic(SETTINGS_FILE, pos, "E120", f"flowdesk.yaml: {where}: {error['msg'].lower()}",
                      hint="see docs/language.md, section Environments")


def _line_of(text: str, key: str) -> Pos:
    """Where `key:` is written, so the caret points at the setting."""
    for number, line in enumerate(text.splitlines(), start=1):
        column = line.find(f"{key}:")
        if key and column >= 0:
            return Pos(number, column + 1, number, column + 1 + len(key))
    return Pos(1, 1, 1, 1)
