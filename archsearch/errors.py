"""Exceptions raised by archsearch.

Every error caused by what a user typed or wrote (a name, a budget, a YAML file, a database
URL) is a :class:`UserError`. Its message is one line that names the parameter, shows the value
received and says how to fix it; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def check_ranges(checks: Sequence[tuple[str, object, bool, str]], *, prefix: str = "") -> None:
    """Raises a :class:`UserError` for the first ``(name, value, ok, fix)`` that is not ok:
    ``"<prefix><name>: <value> is out of range; it must be <fix>"``."""
    for name, value, ok, fix in checks:
        if not ok:
            raise UserError(f"{prefix}{name}: {value!r} is out of range; it must be {fix}")


def first_line(e: object) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class ArchsearchError(Exception):
    """Base class of every exception archsearch raises on purpose."""


class UserError(ArchsearchError):
    """Bad input from the user; the CLI prints the message alone and exits with code 2."""


class UnknownNameError(UserError, KeyError):
    """A name that is not registered (a block, space, strategy, evaluator, metric, ...)."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}; choose one of: {listed}")

    def __str__(self) -> str:
        # KeyError would quote the message; keep it a plain sentence.
        return str(self.args[0])


class SpecError(UserError):
    """An architecture spec that is malformed or describes an impossible network."""


class SpaceError(UserError):
    """A search-space file that does not follow the schema (messages carry file:line)."""


class BudgetError(UserError):
    """A budget string that cannot be parsed, or a budget no member of a space can meet."""


class NotInSpaceError(UserError):
    """An architecture that is not a member of a space; the message says why."""


class StoreError(UserError):
    """A database that cannot be reached, is at the wrong schema revision, or lacks a record."""


class NotFoundError(StoreError):
    """A record the database does not hold (a run, an architecture, a supernet)."""
