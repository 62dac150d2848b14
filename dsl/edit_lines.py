"""Edits of the one-line items of queues and hours: a line as the analyst types it, e.g.
`wrapup 45s`, `max wait 3m then voicemail "complaints"`, `mon-fri 09:00-18:00` or
`open 2026-02-14 09:00-18:00 "春节调休上班"`.

A typed line is read by the language's own parser (inside a declaration of the same kind), so the
form takes exactly what the text editor takes; times and dates are then checked as the compiler
would, so that a wrong one is named at once.  A changed line keeps the comments of the line it
replaces.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from dsl import ast
from dsl.edits import Edit, EditError, declaration, remove_item
from dsl.formatter import format_module
from dsl.parser import parse

# The queue settings in the words of the form, and whether a queue may have more than one.
QUEUE_SETTINGS = {
    "strategy": ("分配策略", "strategy"),
    "skills": ("所需技能", "skills"),
    "priority": ("优先级", "priority"),
    "music": ("等待音乐", "music"),
    "announce": ("等待播报", "announce"),
    "max_wait": ("最长等待", "max wait"),
    "ring_timeout": ("振铃超时", "ring timeout"),
    "wrapup": ("话后处理", "wrapup"),
    "service_level": ("服务水平", "service level"),
}
REPEATABLE = {"announce"}
HOURS_KINDS = {"timezone": "时区", "weekly": "每周", "closed": "休息日", "open": "额外上班", "holidays": "节假日文件"}


class _Kind:
    def __init__(self, cls: type, keyword: str, what: str):
        self.cls, self.keyword, self.what = cls, keyword, what


QUEUE = _Kind(ast.Queue, "queue", "队列")
HOURS = _Kind(ast.Hours, "hours", "营业时间")


def item_line(kind: _Kind, item: ast.Node) -> str:
    """The canonical text of one item, as the form shows it."""
    bare = type(item)(**{**item.__dict__, "comments": [], "trailing_comment": None, "end_comments": []})
    decl = kind.cls(name="x", items=[bare])
    return format_module(ast.Module(path="", imports=[], declarations=[decl])).splitlines()[1].strip()


def read_line(kind: _Kind, line: str, where: str) -> ast.Node:
    """The one item `line` writes, or EditError saying why it is not one."""
    if "\n" in line or "\r" in line:
        raise EditError(f"{where}只能写一行")
    line = line.strip()
    if not line:
        raise EditError(f"{where}是空的:请写上设置,或者删除这一行")
    result = parse(f"{kind.keyword} x {{\n{line}\n}}\n", "<form>")
    decls = result.module.declarations if result.module is not None else []
    item = decls[0].items[0] if len(decls) == 1 and len(decls[0].items) == 1 else None
    if item is None or item.trailing_comment or item.comments or decls[0].end_comments or result.module.end_comments:
        raise EditError(f"{where}写法不对:{line!r} 不是一条{kind.what}设置")
    if kind is HOURS:
        _check_times(item, where)
    return item


def _check_times(item: ast.HoursItem, where: str) -> None:
    for r in item.ranges:
        start, end = _minutes(r.start), _minutes(r.end)
        if start is None or end is None or start >= 24 * 60:
            raise EditError(f"{where}的 {r.start}-{r.end} 不是一天中的时间:时间从 00:00 到 24:00")
        if end <= start:
            raise EditError(f"{where}的 {r.start}-{r.end} 结束早于开始:跨过午夜的时段请分成前后两天的两段")
    for day in (item.first, item.last):
        if day is not None and not isinstance(day, datetime.date):
            raise EditError(f"{where}的日期 {day} 不存在")
    if isinstance(item.first, datetime.date) and isinstance(item.last, datetime.date) and item.last < item.first:
        raise EditError(f"{where}的日期段 {item.first}..{item.last} 结束早于开始")


def _minutes(clock: str) -> int | None:
    hours, minutes = int(clock[:2]), int(clock[3:])
    if minutes > 59 or hours * 60 + minutes > 24 * 60:
        return None
    return hours * 60 + minutes


def _keep_comments(old: ast.Node, new: ast.Node) -> None:
    new.comments, new.trailing_comment, new.pos = old.comments, old.trailing_comment, old.pos


def _decl(module: ast.Module, kind: _Kind, name: str):
    return declaration(module, kind.cls, name, kind.what)


def _numbered(decl, kind: _Kind, number: int):
    if not 1 <= number <= len(decl.items):
        raise EditError(f"{kind.what} {decl.name} 没有第 {number} 行(共 {len(decl.items)} 行)")
    return decl.items[number - 1]


def _key_of(kind: _Kind, item: ast.Node) -> str:
    return item.key if kind is QUEUE else item.kind


def _check_single(kind: _Kind, decl, item, where: str, replacing=None) -> None:
    """A queue has each setting once (announcements aside); an hours calendar one timezone and one holidays file."""
    key = _key_of(kind, item)
    if key in REPEATABLE or (kind is HOURS and key not in ("timezone", "holidays")):
        return
    if any(_key_of(kind, other) == key for other in decl.items if other is not replacing):
        name = QUEUE_SETTINGS[key][0] if kind is QUEUE else HOURS_KINDS[key]
        raise EditError(f"{where}:{kind.what} {decl.name} 已有「{name}」一行,请直接修改那一行")


@dataclass
class SetLine(Edit):
    """Line `number` (1 for the first) of a queue or hours declaration, written anew as `line`."""
    kind: _Kind
    name: str
    number: int
    line: str

    def apply(self, module: ast.Module) -> None:
        decl = _decl(module, self.kind, self.name)
        old = _numbered(decl, self.kind, self.number)
        where = f"{self.kind.what} {decl.name} 第 {self.number} 行"
        new = read_line(self.kind, self.line, where)
        _check_single(self.kind, decl, new, where, replacing=old)
        _keep_comments(old, new)
        decl.items[self.number - 1] = new


@dataclass
class AddLine(Edit):
    """A new last line of a queue or hours declaration."""
    kind: _Kind
    name: str
    line: str

    def apply(self, module: ast.Module) -> None:
        decl = _decl(module, self.kind, self.name)
        where = f"{self.kind.what} {decl.name} 新加的一行"
        new = read_line(self.kind, self.line, where)
        _check_single(self.kind, decl, new, where)
        decl.items.append(new)


@dataclass
class RemoveLine(Edit):
    kind: _Kind
    name: str
    number: int

    def apply(self, module: ast.Module) -> None:
        decl = _decl(module, self.kind, self.name)
        remove_item(decl.items, _numbered(decl, self.kind, self.number))
