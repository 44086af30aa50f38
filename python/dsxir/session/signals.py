"""SIGINT and SIGTERM as an exception a session can commit a pause for.

While a session runs in the main thread, :class:`SignalGuard` replaces the
handlers of SIGINT and SIGTERM with one that raises :class:`Interrupted` in
the main thread. During a commit the signal is held back and raised as soon
as the commit has returned (or failed), so a commit is never cut in half and
the session's generation always matches what the store holds. ``restore``
puts the previous handlers back.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "SignalGuard"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while a session ran; ``signum`` says which.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except
    Exception`` in an optimizer loop does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


class SignalGuard:
    """Raise :class:`Interrupted` for SIGINT/SIGTERM, held back during commits."""

    def __init__(self) -> None:
        """A guard that has installed nothing yet."""
        self._previous: dict[int, Any] = {}
        self._holding = False
        self._pending: int | None = None

    def install(self) -> bool:
        """Install the handlers; ``False`` (nothing done) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        while self._previous:
            signum, handler = self._previous.popitem()
            signal.signal(signum, handler)

    def hold(self) -> None:
        """Hold signals back until :meth:`deliver`."""
        self._holding = True

    def deliver(self) -> None:
        """Stop holding signals back; raise ``Interrupted`` for one that arrived meanwhile."""
        self._holding = False
        pending, self._pending = self._pending, None
        if pending is not None:
            raise Interrupted(pending)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._holding:
            if self._pending is None:
                self._pending = signum
            return
        raise Interrupted(signum)
