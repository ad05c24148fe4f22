"""A small name → object registry with "did you mean" errors, for the parsers rubrics and guard formats name.

Built-ins and users' additions register the same way (a decorator); an unknown name lists what is available.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from evalsvc.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # what the entries are, for messages ("judge parser")
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            self._items[name] = obj
            return obj

        return add

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> T:
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(f"unknown {self.kind} '{name}': {hint}available: {', '.join(self.names())}")
        return self._items[name]
