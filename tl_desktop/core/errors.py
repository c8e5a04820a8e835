"""Typed errors of the engine. Each one's ``str()`` is one readable line that a user can act on; the CLI prints
it and exits 2, the window shows it with the details underneath. Front ends branch on the type, never on text."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message is one readable line."""
