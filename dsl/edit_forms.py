"""Edits of screen forms and field labels: add, remove, move a field of a form's section, make it
read-only or not, and change the label an entity's field is shown with.

Sections are named by their titles (`"基本信息"`), as the form shows them.  A moved field takes its
comments along; it is printed without the blank line it may have had above it.
"""
from __future__ import annotations

from dataclasses import dataclass

from dsl import ast
from dsl.edits import Edit, EditError, checked_name, declaration, remove_item


def _form(module: ast.Module, name: str) -> ast.Form:
    return declaration(module, ast.Form, name, "表单")


def _section(form: ast.Form, title: str) -> ast.FormSection:
    for section in form.sections:
        if section.title == title:
            return section
    raise EditError(f"表单 {form.name} 中没有分区「{title}」")


def _field(form: ast.Form, section: ast.FormSection, name: str) -> ast.FormField:
    for field in section.fields:
        if field.name == name:
            return field
    raise EditError(f"表单 {form.name} 的分区「{section.title}」中没有字段 {name}")


@dataclass
class AddFormField(Edit):
    """A field at the end of a section (the entity must have it: the compiler says when it does not)."""
    form: str
    section: str
    field: str
    readonly: bool = False

    def apply(self, module: ast.Module) -> None:
        form = _form(module, self.form)
        section = _section(form, self.section)
        name = checked_name(self.field, f"表单 {form.name} 分区「{section.title}」的字段名")
        for other in form.sections:
            if any(f.name == name for f in other.fields):
                raise EditError(f"表单 {form.name} 已有字段 {name}(在分区「{other.title}」中):一个字段只能出现一次")
        section.fields.append(ast.FormField(name=name, readonly=self.readonly))


@dataclass
class RemoveFormField(Edit):
    form: str
    section: str
    field: str

    def apply(self, module: ast.Module) -> None:
        form = _form(module, self.form)
        section = _section(form, self.section)
        field = _field(form, section, self.field)
        if len(section.fields) == 1:
            raise EditError(f"表单 {form.name} 的分区「{section.title}」只剩字段 {field.name}:"
                            "分区至少要有一个字段,请在文本编辑器中删除整个分区")
        remove_item(section.fields, field)


@dataclass
class MoveFormField(Edit):
    """A field moved to place `position` (0 for the first) of a section, its own or another."""
    form: str
    section: str
    field: str
    to_section: str
    position: int | None = None     # None: the end

    def apply(self, module: ast.Module) -> None:
        form = _form(module, self.form)
        section = _section(form, self.section)
        field, to = _field(form, section, self.field), _section(form, self.to_section)
        if to is not section and len(section.fields) == 1:
            raise EditError(f"表单 {form.name} 的分区「{section.title}」只剩字段 {field.name},不能移走:"
                            "分区至少要有一个字段")
        remove_item(section.fields, field, moving=True)
        position = len(to.fields) if self.position is None else self.position
        if not 0 <= position <= len(to.fields):
            raise EditError(f"表单 {form.name} 的分区「{to.title}」没有第 {position + 1} 个位置")
        field.pos = ast.NOWHERE     # its old line says nothing about blank lines in its new place
        to.fields.insert(position, field)


@dataclass
class SetFormField(Edit):
    form: str
    section: str
    field: str
    readonly: bool

    def apply(self, module: ast.Module) -> None:
        form = _form(module, self.form)
        _field(form, _section(form, self.section), self.field).readonly = self.readonly


@dataclass
class SetFieldLabel(Edit):
    """The label of an entity's field, what forms and lists show; "" removes it (the name is shown)."""
    entity: str
    field: str
    label: str

    def apply(self, module: ast.Module) -> None:
        entity = declaration(module, ast.Entity, self.entity, "实体")
        field = next((f for f in entity.fields if f.name == self.field), None)
        if field is None:
            raise EditError(f"实体 {entity.name} 中没有字段 {self.field}")
        label = self.label.strip()
        old = next((o for o in field.options if o.key == "label"), None)
        if not label:
            field.options[:] = [o for o in field.options if o is not old]
        elif old is not None:
            old.value = label
        else:
            field.options.append(ast.FieldOption(key="label", value=label))
