"""The analysts' workspace: the project's flows/ and schemas/ files, edited in the browser.

    /workspace                      the files, with the problems each has on disk
    /workspace/file?path=...        one file in an editor, its diagnostics and pictures
    POST /workspace/check           the text as typed: diagnostics and pictures (nothing written)
    POST /workspace/save            writes the file, only when the project compiles without errors
    POST /workspace/format          the text in canonical layout, comments kept (not saved)

The studio writes the very files developers commit to git; it keeps no copy of its own.  A check
compiles the whole project with the typed text in place of the saved file, so the diagnostics are
those `flowdesk check flows schemas` prints for the same text, in the same words and places.
Saving changes the files only; they go live when published (studio.publish).

Who may edit: supervisors (值班主管), and anyone with a role named `analyst` when a project declares
one.  The example project has no analyst role; the business analysts of a call centre are usually
its supervisors, while team leads run people, not definitions.
"""
from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from compiler import CompileResult, compile_project
from compiler import graph as flow_graph
from compiler import workflow_graph
from compiler.sources import SOURCE_SUFFIXES
from dsl import ast
from dsl.diagnostics import Diagnostic, render, summary
from runtime.crm.users import User
from studio import auth

ROLES = ("supervisor", "analyst")
FOLDERS = ("flows", "schemas")
MAX_TEXT = 500_000          # characters; the largest example file has a few thousand
# A form carries a character in up to 9 bytes (a Chinese character is 3 UTF-8 bytes, each sent as %XX).
MAX_FORM_FIELD = 9 * MAX_TEXT + 1024
DOT_TIMEOUT_S = 5.0


class BadPath(Exception):
    """A path or text the workspace will not take; the message says why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def may_edit(user: User | None) -> bool:
    return user is not None and user.has_role(*ROLES)


# ------------------------------------------------------------------ files

def source_path(project: Path, path: str) -> Path:
    """The file `path` names (relative, under flows/ or schemas/, a .flow or .schema file that exists)."""
    if not path:
        raise BadPath("没有指定文件")
    if "\\" in path or "\x00" in path:
        raise BadPath(f"文件路径 {path!r} 含有不允许的字符")
    parts = PurePosixPath(path)
    if parts.is_absolute() or ".." in parts.parts:
        raise BadPath(f"文件路径 {path!r} 必须是项目内 flows/ 或 schemas/ 下的相对路径")
    if len(parts.parts) < 2 or parts.parts[0] not in FOLDERS:
        raise BadPath(f"只能编辑 flows/ 或 schemas/ 下的文件,{path!r} 不在其中")
    if parts.suffix not in SOURCE_SUFFIXES:
        raise BadPath(f"只能编辑 .flow 和 .schema 文件,{path!r} 不是")
    target = (project / parts).resolve()
    # A symbolic link must not lead out of the folder either.
    if not target.is_relative_to((project / parts.parts[0]).resolve()):
        raise BadPath(f"文件 {path!r} 指向 {parts.parts[0]}/ 之外")
    if not target.is_file():
        raise BadPath(f"文件 {path!r} 不存在", 404)
    return target


def source_files(project: Path) -> list[str]:
    """The editable files, as paths relative to the project, folder by folder."""
    out = []
    for folder in FOLDERS:
        root = project / folder
        if root.is_dir():
            out += sorted(p.relative_to(project).as_posix() for p in root.rglob("*")
                          if p.suffix in SOURCE_SUFFIXES and p.is_file())
    return out


def read_source(target: Path) -> str:
    try:
        return target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath(f"文件 {target.name} 不是 UTF-8 文本,不能在这里编辑") from None


def fingerprint(text: str) -> str:
    """What the editor remembers of the file it opened, to notice a change made meanwhile."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def typed(text: str) -> str:
    # Browsers send a textarea's lines with CRLF; the files in git have LF.
    return text.replace("\r\n", "\n")


# ------------------------------------------------------------------ checking

@dataclass(frozen=True)
class Problem:
    """One diagnostic as the page shows it; `excerpt` is what `flowdesk check` prints for it."""
    diagnostic: Diagnostic
    excerpt: str
    here: bool          # in the file being edited


@dataclass(frozen=True)
class Picture:
    kind: str           # flow | workflow
    name: str
    title: str | None
    dot: str
    svg: str | None     # None: Graphviz is missing or failed; the page shows the DOT text


@dataclass
class Check:
    result: CompileResult
    problems: list[Problem]
    pictures: list[Picture] | None   # None: the text has errors, so there is nothing to draw

    @property
    def errors(self) -> int:
        return len(self.result.errors)

    @property
    def summary(self) -> str:
        return summary(self.result.diagnostics)


def compile_with(project: Path, environment: str | None, texts: dict[Path, str] | None = None) -> CompileResult:
    return compile_project([project / folder for folder in FOLDERS], environment=environment, texts=texts)


def check_text(project: Path, environment: str | None, path: str, target: Path, text: str) -> Check:
    """Compiles the project with `text` in place of the file `path`; nothing is written."""
    result = compile_with(project, environment, {target: text})
    problems = [Problem(d, render(d, result.sources.text_of(d.file)), d.file == path) for d in result.diagnostics]
    problems.sort(key=lambda p: not p.here)     # this file's first, in the compiler's order
    pictures = pictures_of(result, path) if result.bundle is not None else None
    return Check(result, problems, pictures)


def pictures_of(result: CompileResult, path: str) -> list[Picture]:
    """A picture of each flow and workflow declared in the file."""
    source = result.sources.files.get(path)
    if source is None or source.module is None or result.bundle is None:
        return []
    out = []
    for decl in source.module.declarations:
        if isinstance(decl, ast.Flow) and decl.name in result.bundle.flows:
            dot = flow_graph.to_dot(result.bundle.flows[decl.name])
        elif isinstance(decl, ast.Workflow) and decl.name in result.bundle.workflows:
            dot = workflow_graph.to_dot(result.bundle.workflows[decl.name])
        else:
            continue
        out.append(Picture(decl.keyword, decl.name, decl.title, dot, svg_of(dot)))
    return out


def svg_of(dot: str) -> str | None:
    """Graphviz's SVG for `dot`, without the XML prologue so it can sit inside the page; None when
    `dot` is missing, fails, or takes too long."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-Tsvg"], input=dot.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None
    svg = done.stdout.decode("utf-8", "replace")
    start = svg.find("<svg")
    return svg[start:] if done.returncode == 0 and start >= 0 else None


# ------------------------------------------------------------------ pages

def refused_page(request: Request) -> Response | None:
    from studio.screens import message

    if not may_edit(auth.current_user(request)):
        return message(request, "无权编辑", "流程与数据定义只有值班主管(或项目中的 analyst 角色)可以编辑。", 403)
    return None


def bad_path_page(request: Request, error: BadPath) -> Response:
    from studio.screens import message

    return message(request, "不能打开文件", str(error), error.status, "/workspace")


def _studio(request: Request):
    return request.app.state.studio


async def workspace_page(request: Request) -> Response:
    from studio.screens import page

    refused = refused_page(request)
    if refused:
        return refused
    studio = _studio(request)
    result = await asyncio.to_thread(compile_with, studio.project, studio.bundle.environment)
    counts: dict[str, list[Diagnostic]] = {}
    for d in result.diagnostics:
        counts.setdefault(d.file, []).append(d)
    files = []
    for path in source_files(studio.project):
        source = result.sources.files.get(path)
        declared = [(d.keyword, d.name, d.title) for d in source.module.declarations] \
            if source is not None and source.module is not None else []
        found = counts.get(path, [])
        files.append({"path": path, "declared": declared, "summary": summary(found) if found else "",
                      "errors": any(d.is_error for d in found)})
    return page(request, "workspace.html", {"title": "流程与数据定义", "current": "workspace", "files": files,
                                             "summary": summary(result.diagnostics)})


def _editor(request: Request, path: str, text: str, base: str, check: Check, status: int = 200,
            notice: str | None = None, error: str | None = None) -> Response:
    from studio.screens import page

    return page(request, "workspace_file.html", {
        "title": path, "current": "workspace", "path": path, "text": text, "base": base, "check": check,
        "notice": notice, "error": error}, status)


async def file_page(request: Request) -> Response:
    refused = refused_page(request)
    if refused:
        return refused
    studio, path = _studio(request), request.query_params.get("path", "")
    try:
        target = source_path(studio.project, path)
        text = read_source(target)
    except BadPath as error:
        return bad_path_page(request, error)
    check = await asyncio.to_thread(check_text, studio.project, studio.bundle.environment, path, target, text)
    saved = "已保存。保存只改动文件;发布后才用于来电和 CRM。" if request.query_params.get("saved") else None
    return _editor(request, path, text, fingerprint(text), check, notice=saved)


async def _typed_form(request: Request) -> tuple[str, Path, str, str]:
    """(path, file, text, base) of an editor's form; BadPath when the path or text cannot be taken."""
    try:
        form = await request.form(max_part_size=MAX_FORM_FIELD)
    except HTTPException as refused:     # a field beyond even MAX_FORM_FIELD
        raise BadPath(f"文本太长(最多 {MAX_TEXT} 个字符)", 413) from refused
    path, text = str(form.get("path", "")), typed(str(form.get("text", "")))
    target = source_path(_studio(request).project, path)
    if len(text) > MAX_TEXT:
        raise BadPath(f"文本太长({len(text)} 个字符,最多 {MAX_TEXT})", 413)
    return path, target, text, str(form.get("base", ""))


async def _typed_or_instead(request: Request) -> tuple[tuple[str, Path, str, str] | None, Response | None]:
    """An editor's form as `_typed_form` reads it, or the page to show instead: refused, or a bad path."""
    refused = refused_page(request)
    if refused:
        return None, refused
    try:
        return await _typed_form(request), None
    except BadPath as error:
        return None, bad_path_page(request, error)


async def check_endpoint(request: Request) -> Response:
    from studio.screens import page

    typed_in, instead = await _typed_or_instead(request)
    if instead:
        return instead
    path, target, text, _ = typed_in
    studio = _studio(request)
    check = await asyncio.to_thread(check_text, studio.project, studio.bundle.environment, path, target, text)
    return page(request, "workspace_check.html", {"check": check, "path": path, "oob": True})


CHANGED_MEANWHILE = ("文件在您打开之后已被别人修改(例如开发人员提交了新版本)。为免覆盖对方的修改,本次没有保存;"
                     "请复制您的改动,重新打开文件后再改。")


@dataclass
class Saving:
    """What became of a save: written (200), refused for a change made meanwhile (409) or for errors (422)."""
    check: Check
    status: int
    error: str | None = None


def save_text(project: Path, environment: str | None, path: str, target: Path, text: str, base: str) -> Saving:
    """Writes `text` to the file when it is still the one opened (`base`) and the project compiles
    without errors with it; the text editor and the form editor both save through here."""
    check = check_text(project, environment, path, target, text)
    if fingerprint(read_source(target)) != base:
        return Saving(check, 409, CHANGED_MEANWHILE)
    if check.errors:
        return Saving(check, 422, f"有 {check.errors} 个错误,文件没有保存。请先改正下面标出的错误。")
    from flowdesk.cli import write_atomically

    write_atomically(target, text)
    return Saving(check, 200)


async def save_endpoint(request: Request) -> Response:
    typed_in, instead = await _typed_or_instead(request)
    if instead:
        return instead
    path, target, text, base = typed_in
    studio = _studio(request)
    try:       # the file can go between the form's check and the save
        saving = await asyncio.to_thread(save_text, studio.project, studio.bundle.environment, path, target, text, base)
    except BadPath as error:
        return bad_path_page(request, error)
    if saving.status != 200:
        return _editor(request, path, text, base, saving.check, saving.status, error=saving.error)
    return RedirectResponse(f"/workspace/file?path={quote(path)}&saved=1", status_code=303)


async def format_endpoint(request: Request) -> Response:
    from dsl.formatter import format_source

    typed_in, instead = await _typed_or_instead(request)
    if instead:
        return instead
    path, target, text, base = typed_in
    formatted, _ = format_source(text, path)
    studio = _studio(request)
    shown = formatted if formatted is not None else text
    check = await asyncio.to_thread(check_text, studio.project, studio.bundle.environment, path, target, shown)
    if formatted is None:
        return _editor(request, path, text, base, check, 422, error="文本有语法错误,无法格式化。请先改正下面标出的错误。")
    return _editor(request, path, formatted, base, check, notice="已按标准格式排版(注释保留),尚未保存。")


routes = [
    Route("/workspace", workspace_page),
    Route("/workspace/file", file_page),
    Route("/workspace/check", check_endpoint, methods=["POST"]),
    Route("/workspace/save", save_endpoint, methods=["POST"]),
    Route("/workspace/format", format_endpoint, methods=["POST"]),
]
