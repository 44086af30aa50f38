"""The summary a store keeps beside each checkpoint, so that listing never reads trial logs.

The summary is a small UTF-8 JSON object, readable on its own (``cat`` shows
it inside a store file), with sorted keys and no spaces::

    {"attempts":12,"best_score":"3fe8000000000000","best_trial_idx":7,
     "completed":10,"errors":2,"optimizer":"demo.RandomSearch",
     "session_id":"s1","status":"running","summary":1,"trials":12,
     "updated_at":[1767225600,123456000]}

``best_score`` is the 16 hex digits of the IEEE 754 bits (big-endian), so that
infinities and ``-0.0`` survive JSON exactly, or ``null``. ``updated_at`` is
``[seconds, nanos]`` of the checkpoint's timestamp. ``summary`` is the layout
version; a reader refuses a version it does not know and any object that does
not have exactly this shape (:class:`~dsxir.errors.CorruptStore` with the
path), because a summary that cannot be trusted is a damaged store.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from dsxir.errors import CorruptStore
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store.interface import (
    STATUSES,
    Listing,
    listing_of,
    timestamp_to_datetime,
)

__all__ = ["SUMMARY_VERSION", "encode_summary", "parse_summary"]

SUMMARY_VERSION = 1
_INT_FIELDS = ("attempts", "completed", "errors", "trials")
_KEYS = frozenset(
    {
        "attempts",
        "best_score",
        "best_trial_idx",
        "completed",
        "errors",
        "optimizer",
        "session_id",
        "status",
        "summary",
        "trials",
        "updated_at",
    }
)


def encode_summary(cp: Checkpoint, *, earlier_trials: int = 0) -> bytes:
    """The summary bytes of a valid checkpoint.

    ``earlier_trials`` trial entries are counted before ``cp``'s own (a
    store's probe holds only the entries a delta appends).
    """
    progress = cp.progress
    best = progress.best_score if progress.HasField("best_score") else None
    listing = listing_of(cp, 0)
    body: dict[str, Any] = {
        "summary": SUMMARY_VERSION,
        "session_id": cp.session_id,
        "optimizer": cp.optimizer,
        "status": listing.status,
        "updated_at": [cp.updated_at.seconds, cp.updated_at.nanos],
        "best_score": None if best is None else struct.pack(">d", best).hex(),
        "best_trial_idx": progress.best_trial_idx if progress.HasField("best_trial_idx") else None,
        "attempts": progress.attempts,
        "completed": progress.completed,
        "errors": progress.errors,
        "trials": earlier_trials + len(progress.trial_log),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_summary(raw: bytes, generation: int, path: str) -> Listing:
    """The listing held by summary bytes; ``CorruptStore`` naming ``path`` for anything else."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptStore(path, f"summary is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise CorruptStore(path, "summary is not a JSON object")
    if body.get("summary") != SUMMARY_VERSION:
        raise CorruptStore(path, f"unsupported summary version {body.get('summary')!r}")
    if set(body) != _KEYS:
        raise CorruptStore(path, "summary does not have the expected keys")
    for name in _INT_FIELDS:
        if not _is_count(body[name]):
            raise CorruptStore(path, f"summary field {name} is not a count")
    if not isinstance(body["session_id"], str) or not isinstance(body["optimizer"], str):
        raise CorruptStore(path, "summary session_id/optimizer is not a string")
    if body["status"] not in STATUSES:
        raise CorruptStore(path, f"summary status {body['status']!r} is unknown")
    stamp = body["updated_at"]
    if not (
        isinstance(stamp, list)
        and len(stamp) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in stamp)
    ):
        raise CorruptStore(path, "summary updated_at is not [seconds, nanos]")
    try:
        updated_at = timestamp_to_datetime(stamp[0], stamp[1])
    except (OverflowError, ValueError):
        raise CorruptStore(path, "summary updated_at is out of range") from None
    best = body["best_score"]
    best_score: float | None = None
    if best is not None:
        try:
            (best_score,) = struct.unpack(">d", bytes.fromhex(best))
        except (TypeError, ValueError, struct.error):
            raise CorruptStore(path, "summary best_score is not 16 hex digits") from None
    return Listing(
        session_id=body["session_id"],
        status=body["status"],
        optimizer=body["optimizer"],
        updated_at=updated_at,
        best_score=best_score,
        completed=body["completed"],
        errors=body["errors"],
        attempts=body["attempts"],
        trials=body["trials"],
        generation=generation,
    )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
