"""A syntax tree as plain nested values, without positions or comments.

Two sources mean the same thing when their trees have the same shape: this is what formatting
must keep (`flowdesk fmt` may move text around but never change the tree).  Fields declared with
`compare=False` (comments, reference positions) are left out, and so is `pos`.
"""
from __future__ import annotations

import dataclasses


def shape(value):
    """Nodes become (type name, ((field, shape), ...)); lists become tuples; other values stay."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = tuple((f.name, shape(getattr(value, f.name))) for f in dataclasses.fields(value)
                       if f.compare and f.name != "pos")
        return (type(value).__name__, fields)
    if isinstance(value, (list, tuple)):
        return tuple(shape(v) for v in value)
    return value


def same_tree(a, b) -> bool:
    return shape(a) == shape(b)
