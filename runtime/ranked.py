"""An ordered set: members kept sorted by a key, with O(log n) lookup of a member's rank.

The ACD keeps its waiting calls and its ready agents in these.  A binary heap would give the head
as cheaply, but callers are told their place in line, which a heap cannot answer without a scan;
a sorted list with bisection answers head, rank and "first after" alike, and inserting or removing
moves at most a few thousand references (microseconds) for queues of the sizes a centre sees.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any, Hashable, Iterator


class Ranked:
    __slots__ = ("_entries", "_keys")

    def __init__(self) -> None:
        self._entries: list[tuple[Any, Hashable]] = []  # (key, member), sorted
        self._keys: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __contains__(self, member: Hashable) -> bool:
        return member in self._keys

    def __iter__(self) -> Iterator[Hashable]:
        return (member for _, member in self._entries)

    def add(self, member: Hashable, key: Any) -> None:
        """Keys should be unique (end them with a sequence number); a member already present
        is moved to the new key."""
        self.discard(member)
        self._keys[member] = key
        insort(self._entries, (key, member))

    def discard(self, member: Hashable) -> bool:
        key = self._keys.pop(member, None)
        if key is None:
            return False
        del self._entries[bisect_left(self._entries, (key, member))]
        return True

    def key(self, member: Hashable) -> Any:
        return self._keys[member]

    def first(self) -> Hashable | None:
        return self._entries[0][1] if self._entries else None

    def rank(self, member: Hashable) -> int:
        """0 for the first member."""
        return bisect_left(self._entries, (self._keys[member], member))

    def first_from(self, key: Any) -> Hashable | None:
        """The first member whose key is >= `key`, wrapping round to the first of all (a rotating
        pointer); None when empty."""
        if not self._entries:
            return None
        i = bisect_left(self._entries, (key,))
        return self._entries[i if i < len(self._entries) else 0][1]
