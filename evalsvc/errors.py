"""The one error family of evalsvc: messages a user can act on, and the exit code the CLI gives.

UserError (exit 2) is a mistake in what the user wrote or pointed at; SystemError_ (exit 1) is the world failing.
"""

from __future__ import annotations


class EvalsvcError(Exception):
    """Base of all evalsvc errors; `problems` holds one line per problem (field path: what is wrong; the fix)."""

    exit_code = 1

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])

    def lines(self) -> list[str]:
        return [self.message, *self.problems] if self.problems else [self.message]


class UserError(EvalsvcError):
    """The manifest, a benchmark file, a path or an option is wrong: the message says which and how to fix it."""

    exit_code = 2


class SystemError_(EvalsvcError):
    """Storage, Ray, the engine or the network failed: nothing the user wrote is wrong."""

    exit_code = 1


class MissingExtra(UserError):
    """An optional dependency is not installed."""

    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} is not installed: pip install 'evalsvc[{extra}]'")
