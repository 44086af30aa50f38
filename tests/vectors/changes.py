"""Changes to a checkpoint by dotted field path, shared by the vector generator and the tests.

Imports nothing of the vectors folder, so both a script run from here
(``from changes import ...``) and the Python suite (``from vectors.changes
import ...``) can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint


def _parent(cp: Checkpoint, path: str) -> tuple[Any, str]:
    """The message holding the field at ``path``, and the field's name."""
    *parents, last = path.split(".")
    target: Any = cp
    for part in parents:
        target = getattr(target, part)
    return target, last


def set_field(path: str, value: Any) -> Callable[[Checkpoint], None]:
    """A change that sets the field at a dotted path (``progress.completed``)."""

    def change(cp: Checkpoint) -> None:
        target, name = _parent(cp, path)
        setattr(target, name, value)

    return change


def clear_field(path: str) -> Callable[[Checkpoint], None]:
    """A change that clears the field at a dotted path."""

    def change(cp: Checkpoint) -> None:
        target, name = _parent(cp, path)
        target.ClearField(name)

    return change
