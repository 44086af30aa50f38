"""The session runner: one worker at a time runs a session, commits every step, resumes.

::

    from dsxir.session import open_session

    with open_session("file:.dsxir/sessions", "s1", optimizer="my.Search",
                      sampler_format=("my.Sampler", 1), trainset=trainset) as s:
        while s.trials < 100:
            s.record_trial(score=evaluate(...), sampler_blob=state())
        s.complete()

- :func:`open_session` takes the session's lease (``LeaseHeld`` when another
  live worker holds it), then creates the session or passes the stored one
  through the resume gate (FORMAT.md §8) and resumes it.
- :class:`Session` commits each trial and transition with compare-and-swap,
  rolls its in-memory checkpoint back when a commit fails, renews the lease
  from a daemon thread (:mod:`.heartbeat`) and commits a pause when closed
  while running: at the end of its ``with`` block, on an exception, and on
  SIGINT/SIGTERM, which raise :class:`Interrupted` (:mod:`.signals`).
"""

from __future__ import annotations

from dsxir.session.runner import MIN_LEASE_TTL, Session, default_holder, open_session
from dsxir.session.signals import Interrupted

__all__ = ["MIN_LEASE_TTL", "Interrupted", "Session", "default_holder", "open_session"]
