"""A cache of what is prepared once per object (a bundle's step index, an hours calendar)."""
from __future__ import annotations

import weakref
from functools import wraps
from typing import Callable, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def once_per_object(prepare: Callable[[T], R]) -> Callable[[T], R]:
    """`prepare(obj)` is computed once per live object, found by identity (pydantic models are not
    hashable), and forgotten when the object is."""
    cache: dict[int, tuple[weakref.ref, R]] = {}

    @wraps(prepare)
    def prepared(obj: T) -> R:
        key = id(obj)
        cached = cache.get(key)
        if cached is not None and cached[0]() is obj:
            return cached[1]
        value = prepare(obj)
        cache[key] = (weakref.ref(obj, lambda _, key=key: cache.pop(key, None)), value)
        return value

    return prepared
