"""One registry type for everything rmbench finds by name: protocols, engines, executors, generators, transforms
and item builders.

An entry is either a lazy target (``"module:attr"``, or ``"module"`` for a module itself) imported on first use, so
listing or validating names never imports torch, or a value registered directly (``register`` as a decorator).
Every entry has a one-line description for listings, may have aliases and tags, and an unknown name raises the
registry's own error class (``SuiteError`` for suite parts, ``ModelSpecError`` for engines) with a "did you mean".
This module must stay import-light: it imports nothing from rmbench.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
V = TypeVar("V")


def import_target(target: str) -> Any:
    """``"package.module:attr"`` → that attribute; ``"package.module"`` → the module."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


@dataclass
class Entry(Generic[T]):
    """One registered name: where its value comes from, what it is (one line), its aliases and tags."""

    name: str
    description: str
    target: str | None = None  # lazy "module:attr"; None when the value was registered directly
    value: T | None = None
    aliases: tuple[str, ...] = ()
    tags: frozenset[str] = field(default_factory=frozenset)

    @property
    def loaded(self) -> bool:
        return self.value is not None


class Registry(Generic[T]):
    """Names → values of one kind, with lazy entries, aliases, tags and "did you mean" errors.

    Iteration yields the canonical names; ``in`` accepts aliases too. So a registry works wherever a collection of
    names is expected (e.g. suite validation messages).
    """

    def __init__(self, kind: str, error: type[Exception] = LookupError) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

    # --- filling ---------------------------------------------------------------------------------------------------

    def lazy(
        self, name: str, target: str, description: str, *, aliases: Iterable[str] = (), tags: Iterable[str] = ()
    ) -> None:
        """Register ``target`` (``"module:attr"`` or ``"module"``) under ``name``; nothing is imported now."""
        self._add(Entry(name, description, target=target, aliases=tuple(aliases), tags=frozenset(tags)))

    def add(
        self,
        name: str,
        value: T,
        description: str | None = None,
        *,
        aliases: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> None:
        """Register an already imported ``value``; the description defaults to its docstring's first line."""
        text = description if description is not None else _first_line(getattr(value, "__doc__", None))
        self._add(Entry(name, text, value=value, aliases=tuple(aliases), tags=frozenset(tags)))

    def register(
        self, name: str, description: str | None = None, *, aliases: Iterable[str] = (), tags: Iterable[str] = ()
    ) -> Callable[[V], V]:
        """Decorator form of ``add``: ``@TRANSFORMS.register("hh_rlhf", tags={"one_to_one"})``."""

        def add(value: V) -> V:
            self.add(name, cast(T, value), description, aliases=aliases, tags=tags)
            return value

        return add

    def extended(self, targets: Mapping[str, str], description: str = "") -> Registry[T]:
        """A copy with more lazy entries (tests and plugins add engines without touching the shipped registry)."""
        copy: Registry[T] = Registry(self.kind, self.error)
        copy._entries, copy._aliases = dict(self._entries), dict(self._aliases)
        for name, target in targets.items():
            copy.lazy(name, target, description)
        return copy

    def _add(self, entry: Entry[T]) -> None:
        for name in (entry.name, *entry.aliases):
            if name in self:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[entry.name] = entry
        self._aliases.update(dict.fromkeys(entry.aliases, entry.name))

    # --- looking up ------------------------------------------------------------------------------------------------

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases; the caller's error class for anything else."""
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise self.error(self.unknown_message(name))

    def entry(self, name: str) -> Entry[T]:
        return self._entries[self.canonical(name)]

    def get(self, name: str) -> T:
        """The value of ``name`` (or an alias), importing a lazy entry on first use."""
        entry = self.entry(name)
        if entry.value is None:
            assert entry.target is not None
            entry.value = cast(T, import_target(entry.target))
        return entry.value

    def unknown_message(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, [*self._entries, *self._aliases], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown {self.kind} '{name}'; known: {', '.join(known)}{hint}"

    # --- listing ---------------------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Canonical names, sorted."""
        return sorted(self._entries)

    def tagged(self, tag: str) -> frozenset[str]:
        """Canonical names and aliases of the entries carrying ``tag``."""
        return frozenset(n for e in self._entries.values() if tag in e.tags for n in (e.name, *e.aliases))

    def listing(self) -> list[tuple[str, str]]:
        """(name, description) per canonical name, sorted; aliases are shown in the description."""
        rows = []
        for name in self.names():
            entry = self._entries[name]
            also = f" (alias: {', '.join(entry.aliases)})" if entry.aliases else ""
            rows.append((name, entry.description + also))
        return rows

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        yield from self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""
