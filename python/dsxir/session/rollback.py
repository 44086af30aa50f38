"""The last committed state of a session's checkpoint, kept so that a failed commit can be undone.

The transitions of :mod:`dsxir.optimizer_session.checkpoint` only append to
the trial log and set a fixed set of other fields: the progress counters and
best trial, ``sampler_blob``, ``best_program_artifact``, ``status``,
``terminal_reason`` and ``updated_at``. :class:`Committed` keeps the length
of the trial log and a copy of those fields, at a cost that does not grow
with the trial log; :meth:`Committed.restore` puts them back into the live
message, which then holds exactly the bytes that were committed.
"""

from __future__ import annotations

from typing import Final, Literal

from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint

__all__ = ["Committed"]

_OPTIONAL: Final[tuple[Literal["best_program_artifact", "terminal_reason"], ...]] = (
    "best_program_artifact",
    "terminal_reason",
)


class Committed:
    """What a transition may change in ``cp``, as committed."""

    __slots__ = ("_kept", "_trials")

    def __init__(self, cp: Checkpoint) -> None:
        """Keep the state of ``cp`` (just committed)."""
        progress = cp.progress
        kept = Checkpoint(status=cp.status, sampler_blob=cp.sampler_blob)
        kept.updated_at.CopyFrom(cp.updated_at)
        for name in _OPTIONAL:
            if cp.HasField(name):
                getattr(kept, name).CopyFrom(getattr(cp, name))
        copy = kept.progress
        copy.attempts = progress.attempts
        copy.completed = progress.completed
        copy.errors = progress.errors
        if progress.HasField("best_score"):
            copy.best_score = progress.best_score
            copy.best_trial_idx = progress.best_trial_idx
        self._kept = kept
        self._trials = len(progress.trial_log)

    def restore(self, cp: Checkpoint) -> None:
        """Put the kept state back into ``cp`` (the same session, changed since)."""
        kept, progress = self._kept, cp.progress
        del progress.trial_log[self._trials :]
        cp.status = kept.status
        cp.sampler_blob = kept.sampler_blob
        cp.updated_at.CopyFrom(kept.updated_at)
        for name in _OPTIONAL:
            cp.ClearField(name)
            if kept.HasField(name):
                getattr(cp, name).CopyFrom(getattr(kept, name))
        copy = kept.progress
        progress.attempts = copy.attempts
        progress.completed = copy.completed
        progress.errors = copy.errors
        if copy.HasField("best_score"):
            progress.best_score = copy.best_score
            progress.best_trial_idx = copy.best_trial_idx
        else:
            progress.ClearField("best_score")
            progress.ClearField("best_trial_idx")
