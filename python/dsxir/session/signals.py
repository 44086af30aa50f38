"""SIGINT and SIGTERM as an exception a session can commit a pause for.

While a session runs in the main thread, :class:`SignalGuard` replaces the
handlers of SIGINT and SIGTERM with one that raises :class:`Interrupted` in
the main thread. During a commit the signal is held back and raised as soon
as the commit has returned (or failed), so a commit is never cut in half and
the session's generation always matches what the store holds.

The handler and the holding back are the process's, not a session's: a
signal has one handler per process, so every guard installed shares one.
The first guard installed replaces the handlers, the last one restored puts
back those it found, whatever order sessions close in. A commit of any
session in the main thread holds signals back for all of them, and holds
nest: a signal is raised when the outermost hold ends. In other threads
signals are not handled (Python runs handlers in the main thread only) and
holds do nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, ClassVar

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


class _Process:
    """The process's handler state: read and changed in the main thread only."""

    previous: ClassVar[dict[int, Any]] = {}
    guards: ClassVar[int] = 0
    holds: ClassVar[int] = 0
    pending: ClassVar[int | None] = None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _handle(signum: int, frame: FrameType | None) -> None:
    if _Process.holds:
        if _Process.pending is None:
            _Process.pending = signum
        return
    raise Interrupted(signum)


class SignalGuard:
    """One session's share of the process's SIGINT/SIGTERM handler."""

    def __init__(self) -> None:
        """A guard that has installed nothing yet."""
        self._installed = False

    def install(self) -> bool:
        """Install the handlers (once per process); ``False`` outside the main thread."""
        if self._installed or not _in_main_thread():
            return False
        if _Process.guards == 0:
            for signum in _SIGNALS:
                _Process.previous[signum] = signal.signal(signum, _handle)
        _Process.guards += 1
        self._installed = True
        return True

    def restore(self) -> None:
        """Give up this share; the last guard puts back the handlers the first one found."""
        if not self._installed:
            return
        self._installed = False
        _Process.guards -= 1
        if _Process.guards == 0:
            while _Process.previous:
                signum, handler = _Process.previous.popitem()
                if handler is not None:  # None: installed outside Python, cannot be put back
                    signal.signal(signum, handler)

    def hold(self) -> None:
        """Hold signals back until the matching :meth:`deliver` (main thread only)."""
        if _in_main_thread():
            _Process.holds += 1

    def deliver(self) -> None:
        """End a hold; when it was the outermost, raise ``Interrupted`` for a signal held back."""
        if not _in_main_thread():
            return
        _Process.holds = max(_Process.holds - 1, 0)
        if _Process.holds == 0 and _Process.pending is not None:
            pending, _Process.pending = _Process.pending, None
            raise Interrupted(pending)
