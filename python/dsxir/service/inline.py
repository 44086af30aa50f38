"""When the server commits on its event loop instead of a worker thread.

A ``PutCheckpointDelta`` whose store can commit it at once (the file
store's ``try_put_delta``: one record appended, under a lock that is free,
to a session the store holds in memory) is committed on the event loop,
``fsync`` included. Handing a call to a worker thread and back costs the
server about as much CPU as such a commit (two thread wake-ups and the GIL
passed between threads), so on a local disk this raises the commits one
server answers per second by half or more (``make bench-service``).

The loop waits while it commits, so :class:`LoopCommits` stops doing it
when commits are slow: after a commit on the loop that took more than
:data:`SLOW_COMMIT_SECONDS`, or when the recent ones took more than
:data:`MEAN_COMMIT_SECONDS` on average (a disk whose ``fsync`` is slow, a
machine short of CPU), every commit goes to the worker threads for a
pause: :data:`FIRST_PAUSE_SECONDS`, doubled (up to
:data:`LAST_PAUSE_SECONDS`) each time commits are slow again within a
pause's length of the last one ending. A disk that stays slow holds the
loop for one commit every :data:`LAST_PAUSE_SECONDS`; one slow moment
(another session's compaction filling the disk's queue) costs a short pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = [
    "FIRST_PAUSE_SECONDS",
    "LAST_PAUSE_SECONDS",
    "MEAN_COMMIT_SECONDS",
    "SLOW_COMMIT_SECONDS",
    "LoopCommits",
]

SLOW_COMMIT_SECONDS = 0.020
"""A commit on the loop that takes longer starts a pause."""
MEAN_COMMIT_SECONDS = 0.004
"""So does a mean over the recent commits on the loop above this."""
FIRST_PAUSE_SECONDS = 0.25
"""The first pause, and any pause that starts long after the last one ended."""
LAST_PAUSE_SECONDS = 8.0
"""The longest pause."""
_WEIGHT = 1 / 16
"""The weight of the latest commit in the mean (an exponential moving average)."""


class LoopCommits:
    """Whether the next commit may run on the event loop (used on the loop's thread only)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Start allowing commits on the loop; ``clock`` gives seconds."""
        self._clock = clock
        self._mean = 0.0
        self._pause = 0.0
        self._paused_until = float("-inf")

    def allowed(self) -> bool:
        """Whether commits run on the loop now (False during a pause)."""
        return self._clock() >= self._paused_until

    def took(self, seconds: float) -> None:
        """Count a commit on the loop that took ``seconds``; pause when it or the mean is slow."""
        self._mean += (seconds - self._mean) * _WEIGHT
        if seconds <= SLOW_COMMIT_SECONDS and self._mean <= MEAN_COMMIT_SECONDS:
            return
        now = self._clock()
        again = now - self._paused_until < self._pause
        self._pause = min(2 * self._pause, LAST_PAUSE_SECONDS) if again else FIRST_PAUSE_SECONDS
        self._paused_until = now + self._pause
        self._mean = 0.0

    @property
    def pause(self) -> float:
        """The length of the last pause (0 before any)."""
        return self._pause
