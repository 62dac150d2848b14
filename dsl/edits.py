"""Typed changes to a source file, written back as canonical text with its comments kept.

The structured editor of the studio makes the common changes (menu options and prompts here;
queue settings and hours in `dsl.edit_lines`; form fields and labels in `dsl.edit_forms`) on the
syntax tree rather than on the text: the file is parsed, one edit changes the tree in place, and
the formatter prints the whole file again.  Comments live on the nodes they describe
(`dsl.comments`), so every comment stays beside what it was written about.  Comments above a
removed line that the next line follows without a gap stay, above that next line (they usually
head a group of lines); otherwise the comments of what an edit removes (an option, a setting, a
block replaced by `-> label`) go with it.

An edit that cannot be made (a menu that is not there, a key used twice, a time that is not a
time) raises `EditError`, whose message says what and where in the analyst's words.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields

from dsl import ast
from dsl.formatter import _blank_between, format_module
from dsl.literals import parse_duration
from dsl.parser import parse

MENU_KEYS = set("0123456789*#")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DURATION = re.compile(r"[0-9]+(ms|h|m|s)([0-9]+(m|s))*")


class EditError(ValueError):
    """An edit that cannot be made; the message says what, where, and what to do."""


class Edit:
    """One change; `apply` makes it on a parsed module in place or raises EditError."""

    def apply(self, module: ast.Module) -> None:
        raise NotImplementedError


def apply_edit(text: str, path: str, edit: Edit) -> str:
    """The canonical text of the file `text` with `edit` made, comments kept."""
    result = parse(text.removeprefix("\ufeff"), path)
    if result.module is None:
        d = result.diagnostics[0]
        raise EditError(f"{path} 第 {d.pos.line} 行有语法错误({d.message}),表单无法读取这个文件;"
                        "请先在文本编辑器中改正。")
    edit.apply(result.module)
    return format_module(result.module)


# ------------------------------------------------------------------ finding things

def declaration(module: ast.Module, kind: type, name: str, what: str):
    for decl in module.declarations:
        if isinstance(decl, kind) and decl.name == name:
            return decl
    raise EditError(f"{module.path} 中没有{what} {name}")


def statements(body: list[ast.Stmt]) -> Iterator[ast.Stmt]:
    """Every statement of a flow body in source order, those inside blocks (options, branches) too."""
    for stmt in body:
        yield stmt
        for block in _blocks(stmt):
            yield from statements(block.statements)


def _blocks(node: ast.Node) -> Iterator[ast.Block]:
    for f in fields(node):
        value = getattr(node, f.name)
        for part in value if isinstance(value, list) else [value]:
            if isinstance(part, ast.Block):
                yield part
            elif isinstance(part, ast.Node) and not isinstance(part, ast.Stmt):
                yield from _blocks(part)


def menus(flow: ast.Flow) -> list[tuple[str, ast.Menu]]:
    """Each menu of a flow with the name the editor calls it by: its label, or `#n` for the n-th menu."""
    found = [s for s in statements(flow.body) if isinstance(s, ast.Menu)]
    return [(m.label or f"#{n}", m) for n, m in enumerate(found, 1)]


def says(flow: ast.Flow) -> list[ast.Say]:
    return [s for s in statements(flow.body) if isinstance(s, ast.Say)]


def labels(flow: ast.Flow) -> list[str]:
    return [s.label for s in statements(flow.body) if s.label]


def menu_called(flow: ast.Flow, name: str) -> ast.Menu:
    for menu_name, menu in menus(flow):
        if menu_name == name:
            return menu
    raise EditError(f"流程 {flow.name} 中没有菜单 {name}")


def _flow(module: ast.Module, name: str) -> ast.Flow:
    return declaration(module, ast.Flow, name, "流程")


def _option(menu: ast.Menu, key: str, where: str) -> ast.MenuOption:
    for item in menu.items:
        if isinstance(item, ast.MenuOption) and item.key == key:
            return item
    raise EditError(f"{where}没有按键 {key} 的选项")


def _where(flow: ast.Flow, menu: str) -> str:
    return f"流程 {flow.name} 的菜单 {menu} "


def remove_item(items: list, node: ast.Node, moving: bool = False) -> None:
    """Takes `node` out of a body (to put it elsewhere when `moving`, its comments with it).

    The formatter keeps a blank line where the author left a gap between two items (by their line
    numbers); the item after `node` is given the line that keeps a gap above or below `node` and
    adds none for the lines taken out.  Unless `node` is moving, the comments above it stay when
    the next item follows it without a gap: they head a group of lines more often than one line.
    """
    index = next(i for i, item in enumerate(items) if item is node)
    del items[index]
    if index == len(items) or items[index].pos == ast.NOWHERE:
        return
    if index == 0:
        if not moving and not _blank_between(node, items[0]):
            items[0].comments[:0] = node.comments
        return
    before, after = items[index - 1], items[index]
    gap = _blank_between(before, node) or _blank_between(node, after)
    if not moving and not _blank_between(node, after):
        after.comments[:0] = node.comments
    line = before.pos.end_line + len(after.comments) + (2 if gap else 1)
    after.pos = ast.Pos(line, after.pos.column, after.pos.end_line, after.pos.end_column)


# ------------------------------------------------------------------ checking what was typed

def checked_key(key: str, where: str) -> str:
    key = key.strip()
    if key not in MENU_KEYS:
        raise EditError(f"{where}的按键 {key!r} 不是电话按键:请用 0-9、* 或 #")
    return key


def checked_duration(value: str, what: str) -> int:
    value = value.strip()
    if not DURATION.fullmatch(value):
        raise EditError(f"{what} {value!r} 不是时长:请写成 8s、1m30s、2m 这样")
    return parse_duration(value)


def checked_count(value: str, what: str) -> int:
    value = value.strip()
    if not value.isdigit() or not value.isascii():
        raise EditError(f"{what} {value!r} 不是整数")
    return int(value)


def checked_name(value: str, what: str) -> str:
    value = value.strip()
    if not NAME.fullmatch(value):
        raise EditError(f"{what} {value!r} 不是名称:只能用英文字母、数字和下划线,且不以数字开头")
    return value


def _target(flow: ast.Flow, label: str, where: str) -> ast.GotoTarget:
    label = label.strip()
    if label not in labels(flow):
        raise EditError(f"{where}的去向 {label!r} 不是流程 {flow.name} 中的步骤标签")
    return ast.GotoTarget(label=label)


def _title(title: str | None) -> str | None:
    return title.strip() or None if title is not None else None


# ------------------------------------------------------------------ menus and prompts

@dataclass
class SetMenuSettings(Edit):
    """The menu's prompt, timeout and retries; None leaves one as it is, "" (timeout, retries) removes it."""
    flow: str
    menu: str
    prompt: str | None = None
    timeout: str | None = None
    retries: str | None = None

    def apply(self, module: ast.Module) -> None:
        flow = _flow(module, self.flow)
        menu, where = menu_called(flow, self.menu), _where(flow, self.menu)
        if self.prompt is not None:
            if not self.prompt.strip():
                raise EditError(f"{where}的提示语不能为空")
            _set_setting(menu, "prompt", self.prompt)
        if self.timeout is not None:
            _set_setting(menu, "timeout", self.timeout.strip() and checked_duration(self.timeout, f"{where}的超时"))
        if self.retries is not None:
            _set_setting(menu, "retries", self.retries.strip() and checked_count(self.retries, f"{where}的重试次数"))


_SETTING_ORDER = ("prompt", "timeout", "retries")


def _set_setting(menu: ast.Menu, key: str, value) -> None:
    """Changes a setting in place (keeping its comments), adds it after the settings before it, or removes it ("")."""
    for i, item in enumerate(menu.items):
        if isinstance(item, ast.Setting) and item.key == key:
            if value == "":
                remove_item(menu.items, item)
            else:
                item.value = value
            return
    if value == "":
        return
    before = _SETTING_ORDER[:_SETTING_ORDER.index(key)]
    at = sum(1 for item in menu.items if isinstance(item, ast.Setting) and item.key in before)
    menu.items.insert(at, ast.Setting(key=key, value=value))


@dataclass
class SetMenuOption(Edit):
    """An option's key, title and target; None leaves one as it is.  A target is a step label:
    an option whose target is a block of statements gets `-> label` in its place."""
    flow: str
    menu: str
    key: str
    new_key: str | None = None
    title: str | None = None
    target: str | None = None

    def apply(self, module: ast.Module) -> None:
        flow = _flow(module, self.flow)
        menu, where = menu_called(flow, self.menu), _where(flow, self.menu)
        option = _option(menu, self.key, where)
        if self.new_key is not None:
            key = checked_key(self.new_key, where)
            if key != option.key:
                _free_key(menu, key, where)
                option.key = key
        if self.title is not None:
            option.title = _title(self.title)
        if self.target is not None and self.target.strip():
            option.target = _target(flow, self.target, f"{where}按键 {option.key} ")


def _free_key(menu: ast.Menu, key: str, where: str) -> None:
    for item in menu.items:
        if isinstance(item, ast.MenuOption) and item.key == key:
            title = f"「{item.title}」" if item.title else ""
            raise EditError(f"{where}已有按键 {key}{title}:同一菜单中每个按键只能用一次")


@dataclass
class AddMenuOption(Edit):
    """A new option `key "title" -> target`, after the menu's last option."""
    flow: str
    menu: str
    key: str
    title: str | None
    target: str

    def apply(self, module: ast.Module) -> None:
        flow = _flow(module, self.flow)
        menu, where = menu_called(flow, self.menu), _where(flow, self.menu)
        key = checked_key(self.key, where)
        _free_key(menu, key, where)
        target = _target(flow, self.target, f"{where}按键 {key} ")
        option = ast.MenuOption(key=key, title=_title(self.title), target=target)
        places = [i for i, item in enumerate(menu.items) if not isinstance(item, ast.EventHandler)]
        menu.items.insert(places[-1] + 1 if places else 0, option)


@dataclass
class RemoveMenuOption(Edit):
    flow: str
    menu: str
    key: str

    def apply(self, module: ast.Module) -> None:
        flow = _flow(module, self.flow)
        menu = menu_called(flow, self.menu)
        remove_item(menu.items, _option(menu, self.key, _where(flow, self.menu)))


@dataclass
class SetSay(Edit):
    """The text of the n-th `say` of a flow (1 for the first, in source order)."""
    flow: str
    number: int
    text: str

    def apply(self, module: ast.Module) -> None:
        flow = _flow(module, self.flow)
        found = says(flow)
        if not 1 <= self.number <= len(found):
            raise EditError(f"流程 {flow.name} 没有第 {self.number} 句播报(共 {len(found)} 句)")
        if not self.text.strip():
            raise EditError(f"流程 {flow.name} 第 {self.number} 句播报的文字不能为空")
        found[self.number - 1].text = self.text
