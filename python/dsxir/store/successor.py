"""The history check of a whole-checkpoint commit, on bytes a store already holds.

A store that commits a whole checkpoint (``put``) has just encoded it, and
may still hold the bytes of the stored checkpoint's trial entries (from its
own last commit, or from a snapshot it read). :func:`check_put` then decides
the trial-log rules of FORMAT.md §9.1 by comparing those bytes, instead of
serializing both trial logs again as
:func:`~dsxir.optimizer_session.history.check_successor` does; anything
but an unchanged prefix goes to that function, which raises exactly what it
always raises.
"""

from __future__ import annotations

from dsxir.optimizer_session.grammar import TRAILER_SIZE
from dsxir.optimizer_session.history import check_successor
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, Progress

__all__ = ["check_put", "trial_log_bytes"]

_PROGRESS = Checkpoint.PROGRESS_FIELD_NUMBER
_TRIAL_LOG = Progress.TRIAL_LOG_FIELD_NUMBER


def check_put(
    stored: Checkpoint, stored_log: bytes | None, new: Checkpoint, sealed: bytes
) -> bytes:
    """``check_successor(stored, new)``; return :func:`trial_log_bytes` of ``new``.

    ``sealed`` is what ``checkpoint.encode(new)`` returned, ``stored_log``
    :func:`trial_log_bytes` of ``stored`` (``None`` when unknown). When
    ``new``'s progress starts with ``stored_log``, its first entries are
    ``stored``'s, byte for byte (entries are self-delimiting and come first),
    and only the other rules are checked; otherwise the whole check runs.
    """
    start, end = _progress_span(sealed)
    if stored_log is not None and sealed.startswith(stored_log, start, end):
        check_successor(stored, new, appended=True)  # every rule but the trial log's
        return _log_of(sealed, start, end, new.progress)
    check_successor(stored, new)
    return _log_of(sealed, start, end, new.progress)


def trial_log_bytes(sealed: bytes, progress: Progress) -> bytes:
    """The bytes of the trial entries in a checkpoint's canonical bytes (``sealed``).

    ``progress`` is that checkpoint's. The result may run past the entries
    when the progress holds unknown fields (never short of them): it can
    then only fail :func:`check_put`'s comparison, never pass it wrongly.
    """
    start, end = _progress_span(sealed)
    return _log_of(sealed, start, end, progress)


def _log_of(sealed: bytes, start: int, end: int, progress: Progress) -> bytes:
    """The entries' bytes at the start of ``sealed[start:end]``, the serialized progress."""
    rest = Progress()
    for field, value in progress.ListFields():
        if field.number == _TRIAL_LOG:
            continue
        if field.message_type is not None:
            getattr(rest, field.name).CopyFrom(value)
        else:
            setattr(rest, field.name, value)
    # the entries come first, then the other known fields, then unknown ones, if any:
    # found from the end, the span is exact unless unknown fields repeat those bytes
    span = sealed.rfind(rest.SerializeToString(deterministic=True), start, end)
    return sealed[start : (end if span < 0 else span)]


def _progress_span(sealed: bytes) -> tuple[int, int]:
    """Where the serialized progress lies in canonical checkpoint bytes; empty when absent.

    The bytes were written or checked by this process (FORMAT.md §2): the
    top-level fields before ``progress`` are skipped by their wire types.
    """
    at, size = 0, len(sealed) - TRAILER_SIZE
    while at < size:
        key, at = _varint(sealed, at)
        wire = key & 7
        if wire == 2:
            length, at = _varint(sealed, at)
            if key >> 3 == _PROGRESS:
                return at, at + length
            at += length
        elif wire == 0:
            _, at = _varint(sealed, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"wire type {wire} in canonical checkpoint bytes")
    return size, size


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
