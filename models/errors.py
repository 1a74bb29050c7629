"""Errors raised by macforge for bad input.

Every error names the argument or value that is wrong in one line, so the CLI can print it as is
(exit code 2) and tests can pin the message.
"""

from __future__ import annotations

__all__ = ["MacforgeError", "UnknownNameError"]


class MacforgeError(ValueError):
    """Bad input to macforge: the message names the argument and what is wrong with it."""


class UnknownNameError(MacforgeError, KeyError):
    """An unknown format / unit / simulator name. The message lists the known names."""

    def __init__(self, kind: str, name: object, known: list[str], extra: str = "") -> None:
        self.kind = kind
        self.name = name
        self.known = list(known)
        msg = f"unknown {kind} {name!r}; known: {', '.join(self.known)}"
        if extra:
            msg += extra if extra.startswith(";") else f" {extra}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
