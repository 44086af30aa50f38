"""Applying many deltas to a snapshot, with one check at the end (docs/store-file.md §9).

A store that keeps a snapshot and the deltas committed after it (the file
store's records, the PostgreSQL store's delta rows) reads a session with
:func:`replay`: the deltas are merged without their own checks
(:func:`~dsxir.optimizer_session.delta.merge_many`), then the
checkpoint they end with is checked once, so the work grows with the
deltas, not with their number times the session.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from dsxir.errors import InvalidDelta
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta, Progress
from dsxir.optimizer_session.validate import check_extension

__all__ = ["DECODED_AHEAD", "DECODED_AHEAD_BYTES", "decode_ahead", "replay"]

DECODED_AHEAD = 4096
"""How many deltas :func:`decode_ahead` decodes at most."""
DECODED_AHEAD_BYTES = 4 << 20
"""The most delta bytes :func:`decode_ahead` decodes: the rest are decoded one at a time."""


def replay(cp: Checkpoint, deltas: Iterable[CheckpointDelta]) -> Checkpoint:
    """``cp`` changed by ``deltas`` in order, then checked by FORMAT.md §7.

    The deltas are merged into ``light``, a copy of ``cp`` without its trial
    entries, so that the appended entries alone are walked by the final
    check (:func:`~dsxir.optimizer_session.validate.check_extension`); then
    ``cp`` takes them. A head without progress drops the entries before it.
    ``deltas`` is consumed lazily: a generator may check each item just
    before it is merged. Raises ``InvalidDelta`` for a delta of another
    session or trial count (§13.2 steps 1-2), ``InvalidCheckpoint`` when the
    result breaks a rule; the returned checkpoint may be ``cp`` itself.
    """
    light = _without_log(cp)
    earlier = cp.progress
    if not dl.merge_many(light, deltas, earlier=len(earlier.trial_log)):
        earlier = Progress()
    check_extension(light, earlier)
    if earlier is not cp.progress:
        return light
    dl.merge(cp, light, 0)
    return cp


def decode_ahead(raws: Iterable[bytes | None]) -> list[CheckpointDelta | InvalidDelta]:
    """The first deltas of ``raws`` decoded, each or the ``InvalidDelta`` it raised.

    For a store that decodes its deltas while its snapshot is checked (a
    second thread, ``checkpoint.decode``'s ``meanwhile``), before it applies
    them in order: item ``i`` stands for ``raws[i]``. It stops at a ``None``
    (bytes the store has yet to read or check), after :data:`DECODED_AHEAD`
    deltas, and before passing :data:`DECODED_AHEAD_BYTES`; the store
    decodes the others when it applies them.
    """
    decoded: list[CheckpointDelta | InvalidDelta] = []
    budget = DECODED_AHEAD_BYTES
    for raw in itertools.islice(raws, DECODED_AHEAD):
        if raw is None or len(raw) > budget:
            break
        budget -= len(raw)
        try:
            decoded.append(dl.decode_delta(raw))
        except InvalidDelta as exc:
            decoded.append(exc)
    return decoded


def decoded_at(
    decoded: list[CheckpointDelta | InvalidDelta], index: int, read: Callable[[], bytes]
) -> CheckpointDelta:
    """Delta ``index``: the one :func:`decode_ahead` decoded, else ``decode_delta(read())``.

    Raises the ``InvalidDelta`` that :func:`decode_ahead` kept for it, or
    the one ``decode_delta`` raises.
    """
    if index < len(decoded):
        delta = decoded[index]
        if isinstance(delta, InvalidDelta):
            raise delta
        return delta
    return dl.decode_delta(read())


def _without_log(cp: Checkpoint) -> Checkpoint:
    """A copy of ``cp``'s known fields without its trial entries (no unknown fields)."""
    light = Checkpoint()
    for field, value in cp.ListFields():
        if field.number == Checkpoint.PROGRESS_FIELD_NUMBER:
            light.progress.SetInParent()
            for inner, part in value.ListFields():
                if inner.number != Progress.TRIAL_LOG_FIELD_NUMBER:
                    _set(light.progress, inner, part)
        else:
            _set(light, field, value)
    return light


def _set(target: Message, field: FieldDescriptor, value: object) -> None:
    if field.is_repeated:
        getattr(target, field.name).extend(value)
    elif field.message_type is not None:
        getattr(target, field.name).CopyFrom(value)
    else:
        setattr(target, field.name, value)
