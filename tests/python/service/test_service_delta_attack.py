"""Hostile PutCheckpointDelta and checkpoint-view WatchSession calls, sent as raw bytes.

Each attack goes to a real server (a file store; one over PostgreSQL) with
generic calls, so nothing the Python client checks first stands in the way.
Every refusal must come with the status code and reason docs/service.md
gives, leave the stored session as it was and leave the server serving.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.optimizer_session import checkpoint, grammar
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.optimizer_session.wire import varint
from dsxir.service import CheckpointServer
from dsxir.store import FileStore
from dsxir.store.grpc import WatchEvent, WatchStream
from dsxir.store.grpc.protocol import SERVICE_NAME
from dsxir.store.postgres import PostgresStore
from service_fixtures import Refusal, refusal_of, serve_in_thread, sql, wait_until
from store_util import make_cp

PUT = f"/{SERVICE_NAME}/PutCheckpoint"
PUT_DELTA = f"/{SERVICE_NAME}/PutCheckpointDelta"
GET = f"/{SERVICE_NAME}/GetCheckpoint"
WATCH = f"/{SERVICE_NAME}/WatchSession"
MAX_MESSAGE = 1 << 20
SK_KEY = "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3"
URL_PASSWORD = "hunter2-" + "Zq9Xw8Vu7"
BEARER = "Zy8Xw7Vu6Ts5Rq4Po3Nm2Lk1"


# --- helpers ------------------------------------------------------------------------------


def _field1(payload: bytes) -> bytes:
    """A request whose field 1 (``delta``, ``checkpoint``, ``session_id``) holds ``payload``."""
    return b"\x0a" + varint(len(payload)) + payload


def _sealed(delta: CheckpointDelta) -> bytes:
    """``delta``'s bytes sealed with their trailer, with none of the writer's checks."""
    return grammar.seal(delta.SerializeToString(deterministic=True))


def _changed(delta: CheckpointDelta, change: Callable[[CheckpointDelta], object]) -> bytes:
    """A PutCheckpointDeltaRequest of a copy of ``delta`` with ``change`` made to it."""
    copy = CheckpointDelta()
    copy.CopyFrom(delta)
    change(copy)
    return _field1(_sealed(copy))


def _next_trial(cp: Checkpoint, generation: int, candidate: str, pad: str = "") -> CheckpointDelta:
    """The delta that commits ``cp`` plus one trial on ``generation``; ``cp`` gets the trial."""
    base = Checkpoint()
    base.CopyFrom(cp)
    stats = {"pad": pad} if pad else None
    checkpoint.record_trial(cp, score=0.5, candidate_id=candidate, stats=stats)
    return dl.diff(base, cp, base_generation=generation)


def _call(channel: grpc.Channel, method: str, request: bytes) -> bytes | Refusal:
    """The response's bytes, or the refusal."""
    try:
        response: bytes = channel.unary_unary(method)(request, timeout=30)
    except grpc.RpcError as exc:
        return refusal_of(exc)
    return response


def _refused(channel: grpc.Channel, request: bytes) -> Refusal:
    outcome = _call(channel, PUT_DELTA, request)
    assert isinstance(outcome, Refusal), "the call was accepted"
    return outcome


def _stored(channel: grpc.Channel, session_id: str) -> tuple[bytes, int]:
    """The sealed checkpoint bytes and generation GetCheckpoint answers."""
    response = _call(channel, GET, _field1(session_id.encode()))
    assert isinstance(response, bytes), response
    message = pb.GetCheckpointResponse.FromString(response)
    return message.checkpoint.SerializeToString(), message.generation


def _files(root: Path) -> dict[str, str]:
    """Every file under ``root`` and the SHA-256 of its bytes."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@dataclass
class Served:
    """A server over a file store holding session ``s`` (2 trials) at generation 1."""

    server: CheckpointServer
    channel: grpc.Channel
    root: Path
    cp: Checkpoint
    delta: CheckpointDelta
    """The delta that commits one more trial on generation 1."""
    files: dict[str, str] = field(init=False)
    """The store's files and their hashes once the session is made."""

    def __post_init__(self) -> None:
        self.files = _files(self.root)

    def assert_unchanged(self) -> None:
        """Session ``s`` is still generation 1, its file and the folder as they were."""
        body, generation = _stored(self.channel, "s")
        assert (body, generation) == (checkpoint.encode(self.cp), 1)
        assert _files(self.root) == self.files


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "store"
    server = serve_in_thread(FileStore(root), max_message_bytes=MAX_MESSAGE)
    channel = grpc.insecure_channel(server.address)
    cp = make_cp("s", trials=2)
    assert isinstance(_call(channel, PUT, _field1(checkpoint.encode(cp))), bytes)
    new = Checkpoint()
    new.CopyFrom(cp)
    delta = _next_trial(new, 1, "n1")
    yield Served(server, channel, root, cp, delta)
    channel.close()
    server.stop(1)


# --- PutCheckpointDelta: requests that are refused ----------------------------------------


def _unsealed(d: CheckpointDelta) -> bytes:
    return _field1(dl.encode_delta(d)[: -grammar.TRAILER_SIZE])


def _wrong_crc(d: CheckpointDelta) -> bytes:
    sealed = bytearray(dl.encode_delta(d))
    sealed[-1] ^= 0x01
    return _field1(bytes(sealed))


def _base_generation(value: int) -> Callable[[CheckpointDelta], bytes]:
    return lambda d: _changed(d, lambda c: setattr(c, "base_generation", value))


def _session(session_id: str) -> Callable[[CheckpointDelta], bytes]:
    return lambda d: _changed(d, lambda c: setattr(c.head, "session_id", session_id))


Case = tuple[Callable[[CheckpointDelta], bytes], str, str | None, list[str], dict[str, str]]
"""The request made of the good delta, the code, reason, BadRequest fields, ErrorInfo metadata."""

REFUSED: dict[str, Case] = {
    "the delta field twice": (
        lambda d: _field1(dl.encode_delta(d)) * 2,
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
        ["delta"],
        {"field": "delta"},
    ),
    "unsealed": (
        _unsealed,
        "INVALID_ARGUMENT",
        "INVALID_CHECKPOINT",
        ["<input>"],
        {"field": "<input>", "rule": "input.trailer", "subject": "delta"},
    ),
    "wrong crc": (
        _wrong_crc,
        "INVALID_ARGUMENT",
        "INVALID_CHECKPOINT",
        ["<input>"],
        {"field": "<input>", "rule": "input.checksum", "subject": "delta"},
    ),
    "sealed bytes that are no protobuf": (
        lambda d: _field1(grammar.seal(b"\xff\xff")),
        "INVALID_ARGUMENT",
        "INVALID_CHECKPOINT",
        ["<input>"],
        {"field": "<input>", "rule": "wire.truncated", "subject": "delta"},
    ),
    "over the message size limit": (
        lambda d: _field1(dl.encode_delta(d) + b"\x00" * MAX_MESSAGE),
        "RESOURCE_EXHAUSTED",
        None,
        [],
        {},
    ),
    "garbage bytes": (
        lambda d: b"\xff\xff\xff\xff\x0f",
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
        ["<input>"],
        {"field": "<input>"},
    ),
    "a field cut short": (
        lambda d: b"\x0a\x05ab",
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
        ["<input>"],
        {"field": "<input>"},
    ),
    "an empty request": (
        lambda d: b"",
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
        ["delta"],
        {"field": "delta"},
    ),
    "field 1 as a varint": (
        lambda d: b"\x08\x01",
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
        ["delta"],
        {"field": "delta"},
    ),
    "base generation 0": (
        _base_generation(0),
        "INVALID_ARGUMENT",
        "INVALID_CHECKPOINT",
        ["delta.base_generation"],
        {"field": "base_generation", "rule": "delta.base_generation", "subject": "delta"},
    ),
    "base trials of another base": (
        lambda d: _changed(d, lambda c: setattr(c, "base_trials", 7)),
        "INVALID_ARGUMENT",
        "INVALID_CHECKPOINT",
        ["delta.base_trials"],
        {"field": "base_trials", "rule": "delta.base_trials", "subject": "delta"},
    ),
    "a session that does not exist": (
        _session("nosuch"),
        "ABORTED",
        "GENERATION_CONFLICT",
        [],
        {"session_id": "nosuch", "expected_generation": "1", "stored_generation": "0"},
    ),
    "the largest base generation": (
        _base_generation(2**64 - 1),
        "ABORTED",
        "GENERATION_CONFLICT",
        [],
        {"session_id": "s", "expected_generation": str(2**64 - 1), "stored_generation": "1"},
    ),
}
INVALID_IDS = ["../x", "", "a/b", ".hidden", "a\x00b", "x" * 201]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_hostile_delta_request_is_refused_and_stores_nothing(served: Served, case: str) -> None:
    build, code, reason, fields, metadata = REFUSED[case]
    refusal = _refused(served.channel, build(served.delta))
    assert refusal.code == getattr(grpc.StatusCode, code), refusal
    assert (refusal.reason, refusal.fields) == (reason, fields), refusal
    assert metadata.items() <= refusal.metadata.items(), refusal
    served.assert_unchanged()
    assert served.server.limits.calls.held == 0
    assert served.server.limits.memory.used == 0


@pytest.mark.parametrize("session_id", INVALID_IDS)
def test_a_delta_naming_an_invalid_session_is_refused(served: Served, session_id: str) -> None:
    refusal = _refused(served.channel, _session(session_id)(served.delta))
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT, refusal
    assert refusal.reason == "INVALID_SESSION_ID", refusal
    assert "invalid session id" in refusal.details
    served.assert_unchanged()


def test_an_invalid_session_id_names_the_heads_field(served: Served) -> None:
    refusal = _refused(served.channel, _session("../x")(served.delta))
    assert refusal.fields == ["delta.head.session_id"]


def test_unknown_request_fields_are_ignored_and_not_stored(served: Served) -> None:
    """proto3: fields the request does not define are skipped; the commit is the delta's alone."""
    unknown = b"\x98\x06\x01" + b"\x12\x03abc" + b"\xa5\x01\x00\x00\x00\x00"  # 99, 2, 20
    request = unknown + _field1(dl.encode_delta(served.delta)) + unknown
    response = _call(served.channel, PUT_DELTA, request)
    assert isinstance(response, bytes), response
    assert pb.PutCheckpointDeltaResponse.FromString(response).generation == 2
    body, generation = _stored(served.channel, "s")
    assert (body, generation) == (checkpoint.encode(dl.apply(served.cp, served.delta)), 2)


# --- credentials in the head ------------------------------------------------------------


def _option(key: str, value: str) -> Callable[[CheckpointDelta], None]:
    def change(d: CheckpointDelta) -> None:
        d.kept &= ~(1 << Checkpoint.OPTIMIZER_OPTS_FIELD_NUMBER)
        entry = d.head.optimizer_opts.add()
        entry.key = key
        entry.value.string_value = value

    return change


def _candidate(value: str) -> Callable[[CheckpointDelta], None]:
    return lambda d: setattr(d.head.progress.trial_log[0], "candidate_id", value)


def _stats(value: str) -> Callable[[CheckpointDelta], None]:
    def change(d: CheckpointDelta) -> None:
        entry = d.head.progress.trial_log[0].stats.entries.add()
        entry.key.string_value = "note"
        entry.value.string_value = value

    return change


# name: (change, the secret that must go nowhere, the ErrorInfo field)
CREDENTIALS: dict[str, tuple[Callable[[CheckpointDelta], None], str, str]] = {
    "sk- key as an option value": (
        _option("model", SK_KEY),
        SK_KEY,
        "head.optimizer_opts[0].value.string_value",
    ),
    "URL password as an option value": (
        _option("endpoint", f"https://bob:{URL_PASSWORD}@example.com/v1"),
        URL_PASSWORD,
        "head.optimizer_opts[0].value.string_value",
    ),
    "an option key naming a credential": (
        _option("api_key", URL_PASSWORD),
        URL_PASSWORD,
        "head.optimizer_opts[0].key",
    ),
    "sk- key as a candidate id": (
        _candidate(f"cand-{SK_KEY}"),
        SK_KEY,
        "head.progress.trial_log[0].candidate_id",
    ),
    "bearer token in trial stats": (
        _stats(f"Authorization: Bearer {BEARER}"),
        BEARER,
        "head.progress.trial_log[0].stats.entries[0].value.string_value",
    ),
}


def _nowhere(secret: str, refusal: Refusal, text: str) -> None:
    """``secret`` is in neither the refusal (message, details, every trailer) nor ``text``."""
    assert secret not in refusal.details
    assert all(secret not in value for value in refusal.metadata.values())
    for _, value in refusal.trailers:
        raw = value if isinstance(value, bytes) else value.encode()
        assert secret.encode() not in raw
    assert secret not in text


@pytest.mark.parametrize("case", sorted(CREDENTIALS))
def test_a_credential_in_the_head_is_refused_and_goes_nowhere(
    served: Served,
    case: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    change, secret, path = CREDENTIALS[case]
    caplog.set_level(logging.DEBUG)
    refusal = _refused(served.channel, _changed(served.delta, change))
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT, refusal
    assert refusal.reason == "INVALID_CHECKPOINT", refusal
    assert refusal.metadata["field"] == path, refusal
    out, err = capfd.readouterr()
    _nowhere(secret, refusal, caplog.text + out + err)
    served.assert_unchanged()
    stored = b"".join((served.root / name).read_bytes() for name in _files(served.root))
    assert b"test.Opt" in stored and secret.encode() not in stored  # the bytes are plain


def test_a_credential_refusal_names_a_field_of_the_request(served: Served) -> None:
    refusal = _refused(served.channel, _changed(served.delta, _candidate(SK_KEY)))
    assert refusal.fields == ["delta.head.progress.trial_log[0].candidate_id"]
    assert refusal.metadata.get("subject") == "delta"


def test_a_credential_is_refused_over_postgres(
    pg_store: PostgresStore, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve_in_thread(pg_store)
    channel = grpc.insecure_channel(server.address)
    cp = make_cp("s", trials=2)
    assert isinstance(_call(channel, PUT, _field1(checkpoint.encode(cp))), bytes)
    delta = _next_trial(cp, 1, "n1")
    refusal = _refused(channel, _changed(delta, _option("model", SK_KEY)))
    assert (refusal.code, refusal.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CHECKPOINT",
    )
    _nowhere(SK_KEY, refusal, caplog.text)
    schema = pg_store.schema

    def holding(text: str) -> str:
        return (
            f"(SELECT count(*) FROM {schema}.dsxir_checkpoints"
            f" WHERE position('\\x{text.encode().hex()}'::bytea IN body) > 0)"
        )

    rows = sql(
        pg_url,
        f"SELECT (SELECT count(*) FROM {schema}.dsxir_deltas), {holding(SK_KEY)},"
        f" {holding('test.Opt')},"  # the search finds what is there
        f" (SELECT generation FROM {schema}.dsxir_checkpoints WHERE session_id = 's')",
    )
    assert rows == [(0, 0, 1, 1)]
    assert _stored(channel, "s")[1] == 1
    response = _call(channel, PUT_DELTA, _field1(dl.encode_delta(delta)))  # the clean one
    assert isinstance(response, bytes), response
    channel.close()
    server.stop(1)


# --- a flood of concurrent commits ---------------------------------------------------------


def _flood_requests(session_id: str, cp: Checkpoint) -> list[tuple[int, str, bytes]]:
    """500 PutCheckpointDelta requests, 100 on each of generations 1-5, shuffled.

    Generation ``g``'s variants differ in their trial's candidate id only, and
    each builds on variant 0 of generation ``g - 1``: whichever variant won
    that generation, the next ones apply to it.
    """
    requests = []
    base = cp
    for generation in range(1, 6):
        variants = []
        for variant in range(100):
            new = Checkpoint()
            new.CopyFrom(base)
            candidate = f"g{generation}v{variant}"
            delta = _next_trial(new, generation, candidate)
            requests.append((generation, candidate, _field1(dl.encode_delta(delta))))
            variants.append(new)
        base = variants[0]
    random.Random(session_id).shuffle(requests)
    return requests


def _flood(channels: list[grpc.Channel], session_id: str) -> tuple[dict[int, str], list[Refusal]]:
    """Make session ``session_id`` (1 trial), then send the 500 requests at once.

    Request ``i`` goes on ``channels[i % len(channels)]``. Returns the
    candidate that won each generation (a generation won twice fails) and
    the refusals.
    """
    cp = make_cp(session_id, trials=1)
    assert isinstance(_call(channels[0], PUT, _field1(checkpoint.encode(cp))), bytes)
    requests = _flood_requests(session_id, cp)
    puts = [channel.unary_unary(PUT_DELTA) for channel in channels]
    futures = [
        puts[i % len(puts)].future(request, timeout=60)
        for i, (_, _, request) in enumerate(requests)
    ]
    won: dict[int, str] = {}
    refusals = []
    for (generation, candidate, _), future in zip(requests, futures, strict=True):
        error = future.exception()
        if error is None:
            answer = pb.PutCheckpointDeltaResponse.FromString(future.result())
            assert answer.generation == generation + 1
            assert generation not in won, f"generation {generation} committed twice"
            won[generation] = candidate
        else:
            refusals.append(refusal_of(error))
    return won, refusals


def test_a_flood_of_deltas_commits_each_generation_once(tmp_path: Path) -> None:
    """500 calls at once on one session (five connections): one commit per generation."""
    server = serve_in_thread(FileStore(tmp_path / "store"), max_calls=600)
    channels = [
        grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(5)
    ]
    started = time.monotonic()
    won, refusals = _flood(channels, "s")
    print(f"500 deltas in {time.monotonic() - started:.2f} s, generations won: {sorted(won)}")
    assert sorted(won) == list(range(1, len(won) + 1))  # 1 is always won, then no gap
    assert len(refusals) == 500 - len(won)
    for refusal in refusals:
        assert (refusal.code, refusal.reason) == (
            grpc.StatusCode.ABORTED,
            "GENERATION_CONFLICT",
        ), refusal
    body, stored_generation = _stored(channels[0], "s")
    assert stored_generation == 1 + len(won)
    stored = checkpoint.decode(body)
    assert [e.candidate_id for e in stored.progress.trial_log] == ["c0"] + [
        won[g] for g in sorted(won)
    ]
    assert server.limits.calls.held == 0 and server.limits.memory.used == 0
    for channel in channels:
        channel.close()
    server.stop(1)


def test_a_flood_on_one_connection_keeps_the_cas_rule(tmp_path: Path) -> None:
    """500 calls at once on one connection: each wins, is ABORTED or was never begun.

    Over 128 streams the server refuses some before starting them
    (REFUSED_STREAM, which the caller sees as UNAVAILABLE): docs/security.md.
    """
    server = serve_in_thread(FileStore(tmp_path / "store"), max_calls=600)
    try:
        for round_ in range(3):
            channel = grpc.insecure_channel(
                server.address, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            won, refusals = _flood([channel], f"r{round_}")
            channel.close()
            assert sorted(won) == list(range(1, len(won) + 1))
            other = [r for r in refusals if r.code != grpc.StatusCode.ABORTED]
            assert all(
                r.code == grpc.StatusCode.UNAVAILABLE and "RST_STREAM" in r.details for r in other
            ), f"round {round_}: {other[:1]}"
    finally:
        server.stop(1)


# --- WatchSession with the checkpoint view ------------------------------------------------


@pytest.mark.parametrize("view", [7, 3, -1])
def test_an_unknown_view_is_refused_naming_view(served: Served, view: int) -> None:
    number = view if view >= 0 else view + 2**64  # an int32 enum: ten bytes when negative
    request = _field1(b"s") + b"\x10" + varint(number)
    with pytest.raises(grpc.RpcError) as info:
        next(served.channel.unary_stream(WATCH)(request, timeout=30))
    refusal = refusal_of(info.value)
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT, refusal
    assert (refusal.reason, refusal.fields) == ("INVALID_REQUEST", ["view"]), refusal
    assert "view" in refusal.details
    served.assert_unchanged()
    wait_until(lambda: served.server.limits.watches.held == 0, 5, "no watch slot held")


def test_twenty_checkpoint_watchers_of_a_large_session(tmp_path: Path) -> None:
    """20 watchers at once on a 5,000-trial session each keep every committed state."""
    server = serve_in_thread(FileStore(tmp_path / "store"), max_watchers=20, watchers_per_client=20)
    channel = grpc.insecure_channel(server.address)
    cp = make_cp("big", trials=5000)
    assert isinstance(_call(channel, PUT, _field1(checkpoint.encode(cp))), bytes)
    expected = {1: checkpoint.encode(cp)}
    request = pb.WatchSessionRequest(session_id="big", view=pb.WATCH_VIEW_CHECKPOINT)
    raw = request.SerializeToString()
    streams = [
        WatchStream(channel.unary_stream(WATCH)(raw, timeout=60), "big", checkpoints=True)
        for _ in range(20)
    ]
    readers = [iter(stream) for stream in streams]
    events: list[list[WatchEvent]] = [[] for _ in streams]
    errors: list[BaseException] = []

    def read(index: int, count: int) -> None:
        try:
            for _ in range(count):
                events[index].append(next(readers[index]))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def read_all(count: int) -> None:
        threads = [threading.Thread(target=read, args=(i, count)) for i in range(len(streams))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors

    read_all(1)  # every watcher has its slot
    with pytest.raises(grpc.RpcError) as info:  # one more than the server allows
        next(channel.unary_stream(WATCH)(raw, timeout=30))
    assert refusal_of(info.value).reason == "TOO_MANY_WATCHERS"
    generation = 1
    for turn in range(5):
        if turn == 3:  # a whole checkpoint in the middle
            checkpoint.record_trial(cp, score=0.25, candidate_id="whole")
            response = _call(
                channel, PUT, _field1(checkpoint.encode(cp)) + b"\x10" + varint(generation)
            )
        else:
            delta = _next_trial(cp, generation, f"t{turn}")
            response = _call(channel, PUT_DELTA, _field1(dl.encode_delta(delta)))
        assert isinstance(response, bytes), response
        generation += 1
        expected[generation] = checkpoint.encode(cp)
    read_all(5)
    for seen in events:
        assert [e.kind for e in seen] == ["initial"] + ["committed"] * 5
        assert [e.generation for e in seen] == list(range(1, 7))
        for event in seen:
            assert event.checkpoint is not None
            assert checkpoint.encode(event.checkpoint) == expected[event.generation]
    assert _stored(channel, "big") == (expected[6], 6)
    for stream in streams:
        stream.cancel()
    wait_until(lambda: server.limits.watches.held == 0, 10, "every watch slot given back")
    channel.close()
    server.stop(1)
