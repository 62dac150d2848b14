"""Stage 1: find the source files, read and parse them, and follow their imports.

The result is a `SourceSet`: every file's text and syntax tree, keyed by a display path
(relative to the project root when possible), plus the diagnostics of reading and parsing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dsl import ast
from dsl.diagnostics import Diagnostic
from dsl.parser import parse

SOURCE_SUFFIXES = (".flow", ".schema")


@dataclass
class SourceFile:
    path: str            # as shown in diagnostics
    real_path: Path
    text: str
    module: ast.Module | None
    imports: list[str] = field(default_factory=list)  # display paths of the files it imports


@dataclass
class SourceSet:
    root: Path
    files: dict[str, SourceFile] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def text_of(self, path: str) -> str | None:
        """The text of a source file, or of another project file a diagnostic names (flowdesk.yaml)."""
        f = self.files.get(path)
        if f is not None:
            return f.text
        other = self.root / path
        try:
            return other.read_text(encoding="utf-8") if other.is_file() else None
        except (OSError, UnicodeDecodeError):
            return None


def find_root(paths: list[Path]) -> Path:
    """The project root: the nearest folder above the inputs that holds flowdesk.yaml, else
    the common parent of the inputs."""
    resolved = [p.resolve() for p in paths] or [Path.cwd().resolve()]
    start = Path(os.path.commonpath([str(p if p.is_dir() else p.parent) for p in resolved]))
    for folder in (start, *start.parents):
        if (folder / "flowdesk.yaml").is_file():
            return folder
    return start


def expand(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files named directly, and every .flow/.schema file beneath named folders, in a stable order."""
    found, missing = [], []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.suffix in SOURCE_SUFFIXES and f.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            missing.append(str(p))
    return found, missing


def display_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def load(paths: list[Path], texts: dict[Path, str] | None = None) -> SourceSet:
    """Read and parse `paths` and, transitively, the files they import.

    `texts` overrides what is on disk for some files (the studio's editor checks unsaved text).
    """
    texts = {p.resolve(): t for p, t in (texts or {}).items()}
    root = find_root(paths)
    sources = SourceSet(root=root)
    files, missing = expand(paths)
    for name in missing:
        sources.diagnostics.append(Diagnostic(name, ast.Pos(1, 1, 1, 1), "E110",
                                              f"no such file or folder: {name}"))
    queue = [(f, None) for f in files]
    while queue:
        path, importer = queue.pop(0)
        shown = display_path(path, root)
        if shown in sources.files:
            continue
        source = _read(path, shown, texts, importer, sources)
        if source is None:
            continue
        sources.files[shown] = source
        if source.module is None:
            continue
        for imp in source.module.imports:
            target = (path.parent / imp.path)
            target_shown = display_path(target, root)
            source.imports.append(target_shown)
            if target.resolve() not in texts and not target.is_file():
                sources.diagnostics.append(Diagnostic(
                    shown, imp.pos, "E111", f"cannot import '{imp.path}': no such file",
                    hint=f"the path is relative to this file's folder ({display_path(path.parent, root) or '.'})"))
                continue
            if target.suffix not in SOURCE_SUFFIXES:
                sources.diagnostics.append(Diagnostic(
                    shown, imp.pos, "E112", f"cannot import '{imp.path}': only .flow and .schema files can be imported"))
                continue
            queue.append((target, (shown, imp)))
    return sources


def _read(path: Path, shown: str, texts, importer, sources: SourceSet) -> SourceFile | None:
    resolved = path.resolve()
    if resolved in texts:
        text = texts[resolved]
    else:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            sources.diagnostics.append(Diagnostic(shown, ast.Pos(1, 1, 1, 1), "E113",
                                                  f"the file is not UTF-8 text (byte {error.start})",
                                                  hint="save the file as UTF-8"))
            return None
        except OSError as error:
            sources.diagnostics.append(Diagnostic(shown, ast.Pos(1, 1, 1, 1), "E110",
                                                  f"cannot read the file: {error.strerror}"))
            return None
    text = text.lstrip("\ufeff")
    result = parse(text, shown)
    sources.diagnostics.extend(result.diagnostics)
    return SourceFile(path=shown, real_path=resolved, text=text, module=result.module)
