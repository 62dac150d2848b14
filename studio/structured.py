"""The structured editor: common changes made in forms and written back as canonical DSL text.

    /workspace/form?path=...    the file's menus and prompts, queue settings, hours, screen forms and
                                field labels, each in a small form
    POST /workspace/form        one change: made on the file as it is on disk, then saved like the
                                text editor saves (same base check, same compile, same atomic write)

A change is made on the syntax tree (`dsl.edits`, `dsl.edit_lines`, `dsl.edit_forms`) and the whole
file is printed again by the formatter, so the file stays in canonical layout with its comments.
The page answers with the lines that changed.  A change that cannot be made, a file changed
meanwhile, or a change after which the project has errors writes nothing; the page then shows why,
with what was typed still in its form.
"""
from __future__ import annotations

import asyncio
import difflib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compiler.acd import STRATEGIES
from dsl import ast
from dsl.edit_forms import AddFormField, MoveFormField, RemoveFormField, SetFieldLabel, SetFormField
from dsl.edit_lines import HOURS, HOURS_KINDS, QUEUE, QUEUE_SETTINGS, AddLine, RemoveLine, SetLine, item_line
from dsl.edits import (AddMenuOption, Edit, EditError, RemoveMenuOption, SetMenuOption, SetMenuSettings, SetSay,
                       apply_edit, labels, menus, says)
from dsl.formatter import expr
from dsl.literals import format_duration
from dsl.parser import parse
from studio import workspace
from studio.workspace import BadPath, bad_path_page, fingerprint, read_source, refused_page, source_path

CHANGED_MEANWHILE = ("文件在您打开表单之后已被别人修改(例如开发人员提交了新版本),本次没有保存。"
                     "下面是文件现在的内容,您填写的值仍在原来的表单中,请核对后再提交。")
SAVED = "已保存,文件已按标准格式写回(注释保留)。保存只改动文件;发布后才用于来电和 CRM。"


# ------------------------------------------------------------------ what the page shows

def view_of(module: ast.Module) -> dict:
    """The editable declarations of a file, in the shapes the page's forms need."""
    out: dict[str, list] = {"flows": [], "queues": [], "hours": [], "forms": [], "entities": []}
    for decl in module.declarations:
        if isinstance(decl, ast.Flow):
            out["flows"].append(_flow_view(decl))
        elif isinstance(decl, ast.Queue):
            out["queues"].append(_lines_view(decl, QUEUE, lambda i: QUEUE_SETTINGS[i.key][0]))
        elif isinstance(decl, ast.Hours):
            out["hours"].append(_lines_view(decl, HOURS, lambda i: HOURS_KINDS[i.kind]))
        elif isinstance(decl, ast.Form):
            out["forms"].append(_form_view(decl))
        elif isinstance(decl, ast.Entity):
            out["entities"].append({"name": decl.name, "title": decl.title, "fields": [
                {"name": f.name, "label": next((o.value for o in f.options if o.key == "label"), "")}
                for f in decl.fields]})
    return out


def _flow_view(flow: ast.Flow) -> dict:
    return {"name": flow.name, "title": flow.title, "labels": labels(flow),
            "menus": [_menu_view(name, menu) for name, menu in menus(flow)],
            "says": [{"number": n, "label": s.label, "text": s.text} for n, s in enumerate(says(flow), 1)]}


def _form_view(form: ast.Form) -> dict:
    sections = [{"title": s.title, "fields": [
        {"name": f.name, "readonly": f.readonly, "when": expr(f.when) if f.when is not None else ""} for f in s.fields]}
        for s in form.sections]
    return {"name": form.name, "title": form.title, "entity": form.entity, "sections": sections}


def _menu_view(name: str, menu: ast.Menu) -> dict:
    settings = {i.key: i.value for i in menu.items if isinstance(i, ast.Setting)}
    options = [{"key": o.key, "title": o.title or "",
                "target": o.target.label if isinstance(o.target, ast.GotoTarget) else None,
                "statements": len(o.target.statements) if isinstance(o.target, ast.Block) else 0}
               for o in menu.items if isinstance(o, ast.MenuOption)]
    return {"name": name, "label": menu.label, "prompt": settings.get("prompt", ""),
            "timeout": format_duration(settings["timeout"]) if "timeout" in settings else "",
            "retries": str(settings.get("retries", "")), "options": options}


def _lines_view(decl, kind, name_of) -> dict:
    lines = [{"number": n, "what": name_of(i), "line": item_line(kind, i)} for n, i in enumerate(decl.items, 1)]
    return {"name": decl.name, "title": decl.title, "lines": lines}


# ------------------------------------------------------------------ the change a form asks for

def _number(form, name: str) -> int:
    value = str(form.get(name, "")).strip()
    if not value.isdigit():
        raise EditError(f"表单缺少 {name}(或不是数字):请重新打开表单编辑页面")
    return int(value)


def _text(form, name: str) -> str:
    return workspace.typed(str(form.get(name, "")))


def _move(form, by: int) -> Edit:
    """One place up (-1) or down (+1) within the field's section."""
    return MoveFormField(_text(form, "form"), _text(form, "section"), _text(form, "field"), _text(form, "section"),
                         _number(form, "index") + by)


EDITS = {
    "menu": lambda f: SetMenuSettings(_text(f, "flow"), _text(f, "menu"), _text(f, "prompt"), _text(f, "timeout"),
                                      _text(f, "retries")),
    "option": lambda f: SetMenuOption(_text(f, "flow"), _text(f, "menu"), _text(f, "key"), _text(f, "new_key"),
                                      _text(f, "title"), _text(f, "target")),
    "remove_option": lambda f: RemoveMenuOption(_text(f, "flow"), _text(f, "menu"), _text(f, "key")),
    "add_option": lambda f: AddMenuOption(_text(f, "flow"), _text(f, "menu"), _text(f, "key"), _text(f, "title"),
                                          _text(f, "target")),
    "say": lambda f: SetSay(_text(f, "flow"), _number(f, "number"), _text(f, "text")),
    "queue_line": lambda f: SetLine(QUEUE, _text(f, "name"), _number(f, "number"), _text(f, "line")),
    "remove_queue_line": lambda f: RemoveLine(QUEUE, _text(f, "name"), _number(f, "number")),
    "add_queue_line": lambda f: AddLine(QUEUE, _text(f, "name"), _text(f, "line")),
    "hours_line": lambda f: SetLine(HOURS, _text(f, "name"), _number(f, "number"), _text(f, "line")),
    "remove_hours_line": lambda f: RemoveLine(HOURS, _text(f, "name"), _number(f, "number")),
    "add_hours_line": lambda f: AddLine(HOURS, _text(f, "name"), _text(f, "line")),
    "add_field": lambda f: AddFormField(_text(f, "form"), _text(f, "section"), _text(f, "field"), "readonly" in f),
    "remove_field": lambda f: RemoveFormField(_text(f, "form"), _text(f, "section"), _text(f, "field")),
    "field_readonly": lambda f: SetFormField(_text(f, "form"), _text(f, "section"), _text(f, "field"), "readonly" in f),
    "field_up": lambda f: _move(f, -1),
    "field_down": lambda f: _move(f, +1),
    "field_to": lambda f: MoveFormField(_text(f, "form"), _text(f, "section"), _text(f, "field"),
                                        _text(f, "to_section")),
    "label": lambda f: SetFieldLabel(_text(f, "entity"), _text(f, "field"), _text(f, "label")),
}


def edit_of(form) -> Edit:
    op = _text(form, "op")
    if op not in EDITS:
        raise EditError(f"不认识的修改 {op!r}:请重新打开表单编辑页面")
    return EDITS[op](form)


def diff(path: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), path, path, n=1))


# ------------------------------------------------------------------ pages

def _page(request: Request, path: str, text: str, status: int = 200, **shown) -> Response:
    """The form editor for `text` (the file as it is on disk); `shown`: notice, error, changes,
    check, and `typed` (the form just sent, whose values stay in the form it came from)."""
    from studio.screens import page

    result = parse(text.removeprefix("\ufeff"), path)
    context = {"title": f"表单编辑 {path}", "current": "workspace", "path": path, "base": fingerprint(text),
               "view": view_of(result.module) if result.module is not None else None,
               "syntax": result.diagnostics[0] if result.diagnostics else None,
               "queue_settings": QUEUE_SETTINGS, "strategies": STRATEGIES, "hours_kinds": HOURS_KINDS,
               "typed": {}, "typed_in": None, "notice": None, "error": None, "changes": None, "check": None}
    context.update(shown)
    return page(request, "structured.html", context, status)


async def form_page(request: Request) -> Response:
    refused = refused_page(request)
    if refused:
        return refused
    path = request.query_params.get("path", "")
    try:
        text = read_source(source_path(request.app.state.studio.project, path))
    except BadPath as error:
        return bad_path_page(request, error)
    return _page(request, path, text)


async def edit_endpoint(request: Request) -> Response:
    refused = refused_page(request)
    if refused:
        return refused
    form = await request.form()
    studio, path = request.app.state.studio, str(form.get("path", ""))
    typed = {"typed": {k: str(v) for k, v in form.items()}, "typed_in": str(form.get("form_id", ""))}
    try:
        target = source_path(studio.project, path)
        before = read_source(target)
        if fingerprint(before) != str(form.get("base", "")):
            return _page(request, path, before, 409, error=CHANGED_MEANWHILE, **typed)
        try:
            after = apply_edit(before, path, edit_of(form))
        except EditError as error:
            return _page(request, path, before, 400, error=f"{error}。文件没有修改。", **typed)
        saving = await asyncio.to_thread(workspace.save_text, studio.project, studio.bundle.environment, path,
                                         target, after, fingerprint(before))
    except BadPath as error:
        return bad_path_page(request, error)
    changes = diff(path, before, after)
    if saving.status != 200:
        return _page(request, path, read_source(target), saving.status, error=saving.error, check=saving.check,
                     changes=changes, **typed)
    return _page(request, path, after, notice=SAVED if changes else "内容没有变化,文件未改动。", changes=changes)


routes = [
    Route("/workspace/form", form_page),
    Route("/workspace/form", edit_endpoint, methods=["POST"]),
]
