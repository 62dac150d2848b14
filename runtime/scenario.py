"""Flow test files (`*.test.yaml`): scripted calls and what must happen on them.

    flow: hotline                  # the flow these calls dial (or `number: "4008001000"`)
    from: "13800138000"            # defaults for every test in the file
    at: 2026-11-23 10:00           # wall-clock time in `timezone`
    timezone: Asia/Shanghai
    crm:                           # records that exist before the call
      Customer:
        - {id: 1, name: 张三, phone: "13800138000", tier: gold, manager: 1}
    agents: [li_na, wang_fang]     # agents logged in and ready
    http:                          # replies of outside systems, matched by method and URL part
      - {method: GET, url: /balance, status: 200, body: {amount: "58.20"}}
    tests:
      - name: a gold customer checks the balance
        steps:
          - hear: 您好                # the next prompt contains this text
          - press: "1"
          - hear: 余额 58.20 元
          - wait: 6s                 # time passes (timeouts fire)
          - answer: li_na            # the ringing agent picks up
          - agent_hangs_up: true
          - hangup: true             # the caller hangs up
        expect:
          queue: vip
          agent: li_na
          created: {Ticket: [{category: complaint}]}
          updated: {Customer: [{status: suspended}]}
          ended: hangup              # how the call ended (hangup, transferred, voicemail, ...)

Every field of a test can also be given at file level as the default for its tests.
"""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dsl.literals import parse_duration


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HttpStub(Model):
    method: str = "GET"
    url: str                      # a part of the address that must appear in it
    status: int = 200
    body: Any = None
    fail: Literal["timeout", "refused"] | None = None


class Hear(Model):
    hear: str


class Press(Model):
    press: str

    @field_validator("press", mode="before")
    @classmethod
    def _keys(cls, value):
        text = str(value)
        if not text or any(ch not in "0123456789*#" for ch in text):
            raise ValueError(f"'{text}' is not a string of phone keys (0-9, *, #)")
        return text


class Wait(Model):
    wait: int  # milliseconds

    @field_validator("wait", mode="before")
    @classmethod
    def _duration(cls, value):
        if isinstance(value, (int, float)):
            return int(value * 1000)
        ms = parse_duration(value)
        if ms <= 0:
            raise ValueError(f"'{value}' is not a duration such as 5s or 1m30s")
        return ms


class Answer(Model):
    answer: str  # the agent who picks up


class AgentHangsUp(Model):
    agent_hangs_up: bool = True


class Hangup(Model):
    hangup: bool = True


Step = Union[Hear, Press, Wait, Answer, AgentHangsUp, Hangup]
STEP_KINDS = {"hear": Hear, "press": Press, "wait": Wait, "answer": Answer, "agent_hangs_up": AgentHangsUp,
              "hangup": Hangup}


def _step(raw, index: int):
    """One scripted step, chosen by its single key."""
    if isinstance(raw, str) and raw in ("hangup", "agent_hangs_up"):
        raw = {raw: True}
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError(f"step {index + 1} must be one `key: value`, e.g. `press: 1`")
    (key, value), = raw.items()
    if key not in STEP_KINDS:
        raise ValueError(f"step {index + 1}: unknown step '{key}'; the steps are: {', '.join(STEP_KINDS)}")
    try:
        return STEP_KINDS[key].model_validate({key: value})
    except ValidationError as error:
        raise ValueError(f"step {index + 1}: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None


class Expect(Model):
    prompts: list[str] | None = None         # every prompt heard, in order (each a part of the text)
    queue: str | None = None
    agent: str | None = None
    created: dict[str, list[dict[str, Any]]] | None = None
    updated: dict[str, list[dict[str, Any]]] | None = None
    ended: str | None = None                 # hangup, caller_hangup, transferred, voicemail, ...
    transferred_to: str | None = None
    voicemail: str | None = None
    variables: dict[str, Any] | None = None


class Defaults(Model):
    flow: str | None = None
    number: str | None = None
    caller: str = Field(default="13800138000", alias="from")
    at: datetime.datetime | None = None
    timezone: str = "Asia/Shanghai"
    crm: dict[str, list[dict[str, Any]]] = {}
    agents: list[str] = []
    http: list[HttpStub] = []

    @field_validator("caller", mode="before")
    @classmethod
    def _number_text(cls, value):
        return str(value)


class CallTest(Defaults):
    name: str
    steps: list[Step] = []
    expect: Expect = Expect()
    line: int = 0  # where the test starts in its file, for reports

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value):
        if not isinstance(value, list):
            raise ValueError("steps must be a list")
        return [_step(raw, i) for i, raw in enumerate(value)]

    @model_validator(mode="after")
    def _has_target(self):
        if not self.flow and not self.number:
            raise ValueError("say which flow the call dials: `flow: NAME` or `number: \"...\"`")
        return self


class TestFile(Defaults):
    tests: list[dict[str, Any]]


class ScenarioError(Exception):
    """A test file that cannot be read: the message says where and what."""


def load_tests(path: Path) -> list[CallTest]:
    """The tests of one file, each with the file's defaults filled in."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ScenarioError(f"{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict) or "tests" not in data:
        raise ScenarioError(f"{path}:1: a test file needs a `tests:` list")
    try:
        file = TestFile.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(f"{path}: {_first_error(error)}") from None
    defaults = file.model_dump(by_alias=True, exclude={"tests"}, exclude_unset=True)
    tests = []
    for i, raw in enumerate(file.tests):
        line = raw.pop("__line__", 0) if isinstance(raw, dict) else 0
        try:
            tests.append(CallTest.model_validate({**defaults, **raw, "line": line}))
        except ValidationError as error:
            name = raw.get("name", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"
            raise ScenarioError(f"{path}:{line}: test '{name}': {_first_error(error)}") from None
    return tests


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if p != "__line__")
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


class _LineLoader(yaml.SafeLoader):
    """Remembers the line each test starts on, so failures can point at it."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        if "name" in mapping and ("steps" in mapping or "expect" in mapping) and "__line__" not in mapping:
            mapping["__line__"] = node.start_mark.line + 1
        return mapping
