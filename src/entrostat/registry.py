"""Registries by name: a new method is a function plus a registration, never a fork of the trainer."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from entrostat.config.base import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → object mapping whose lookup errors list the valid names and suggest the closest."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(unknown_name_message(self.kind, name, self.names())) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def unknown_name_message(kind: str, name: object, valid: list[str]) -> str:
    """'unknown <kind> 'x'; did you mean 'y'? valid: a, b, c'."""
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{hint} Valid {kind} names: {', '.join(valid)}"
