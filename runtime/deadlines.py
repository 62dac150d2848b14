"""Named deadlines on a heap: schedule, cancel, and take the ones that are due, earliest first.

Each deadline has a name (any hashable, e.g. ("ring", call_id)); scheduling a name again replaces
its deadline.  Cancelled or replaced entries stay in the heap and are skipped when they surface,
so every operation is O(log n).
"""
from __future__ import annotations

import heapq
from itertools import count
from typing import Hashable


class Deadlines:
    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Hashable]] = []  # (when, seq, name)
        self._live: dict[Hashable, int] = {}               # name -> seq of its current entry
        self._seq = count()

    def __contains__(self, name: Hashable) -> bool:
        return name in self._live

    def schedule(self, name: Hashable, when: int) -> None:
        seq = next(self._seq)
        self._live[name] = seq
        heapq.heappush(self._heap, (when, seq, name))

    def cancel(self, name: Hashable) -> None:
        self._live.pop(name, None)

    def next(self) -> int | None:
        """When the earliest live deadline falls, or None."""
        self._drop_dead()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: int) -> tuple[int, Hashable] | None:
        """The earliest live deadline at or before `now` as (when, name), removed; or None.
        Deadlines falling at the same time come out in the order they were scheduled."""
        self._drop_dead()
        if not self._heap or self._heap[0][0] > now:
            return None
        when, _, name = heapq.heappop(self._heap)
        del self._live[name]
        return when, name

    def _drop_dead(self) -> None:
        heap = self._heap
        while heap and self._live.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)
