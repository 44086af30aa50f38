"""The Atom: a symbol (an Elixir atom) among Term values."""

from __future__ import annotations

import dataclasses

__all__ = ["Atom"]


@dataclasses.dataclass(frozen=True, slots=True)
class Atom:
    """A symbol (an Elixir atom): a name that is not a string."""

    name: str
