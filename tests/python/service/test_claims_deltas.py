"""PutCheckpointDelta as docs/service.md describes it, over a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from dsxir.errors import IllegalHistory
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.wire import varint
from dsxir.service import CheckpointServer
from dsxir.store import FileStore, framing, records
from dsxir.store.grpc import GrpcStore
from dsxir.store.grpc.protocol import SERVICE_NAME
from service_fixtures import refusal_of, serve_in_thread
from store_util import make_cp, one_more, session_on

PUT_DELTA = f"/{SERVICE_NAME}/PutCheckpointDelta"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CheckpointServer, GrpcStore, Path]]:
    """A server over a file store, its client, and the store's folder."""
    server = serve_in_thread(FileStore(tmp_path / "store"))
    client = GrpcStore(server.address, timeout=30)
    yield server, client, tmp_path / "store"
    client.close()
    server.stop(1)


def _records(path: Path) -> list[records.Record]:
    data = path.read_bytes()
    header = framing.parse_header(data[: framing.HEADER_SIZE], str(path), file_size=len(data))
    found, end = records.scan(lambda at, n: data[at : at + n], header.total_length, len(data), "")
    assert end == len(data)
    return found


def test_over_a_file_store_the_server_appends_one_record_per_delta(served: Any) -> None:
    """docs/service.md, The API: over a file store the server appends one record per delta."""
    _, client, folder = served
    cp = make_cp("s1", trials=2)
    generation = client.put(cp)
    sent = []
    for _ in range(3):
        new = one_more(cp)
        delta = dl.diff(cp, new, base_generation=generation)
        generation = client.put_delta(delta)
        sent.append(dl.encode_delta(delta))
        cp = new
    path = folder / "s1.dsxckpt"
    found = _records(path)
    assert [record.generation for record in found] == [2, 3, 4]
    assert [record.delta for record in found] == sent
    assert ck.encode(FileStore(folder).get("s1").checkpoint) == ck.encode(cp)


def _refused(server: CheckpointServer, delta: bytes) -> grpc.RpcError:
    """The error of a PutCheckpointDelta whose ``delta`` field holds the sealed bytes as sent."""
    request = b"\x0a" + varint(len(delta)) + delta
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary(PUT_DELTA)(request, timeout=30)
    return refused.value


def test_a_result_that_breaks_a_rule_is_named_under_checkpoint(served: Any) -> None:
    """docs/service.md, The API: a new checkpoint that breaks a rule, under ``checkpoint.``."""
    server, client, folder = served
    cp = make_cp("s1", trials=3)
    client.put(cp)
    before = (folder / "s1.dsxckpt").read_bytes()
    broken = dl.diff(cp, one_more(cp), base_generation=1)
    broken.head.progress.trial_log[0].trial_idx = 9
    said = refusal_of(_refused(server, dl.encode_delta(broken)))
    code, reason, metadata, fields = said.code, said.reason, said.metadata, said.fields
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CHECKPOINT")
    assert fields == ["checkpoint.progress.trial_log[3].trial_idx"]
    assert metadata["field"] == "progress.trial_log[3].trial_idx"
    assert metadata["rule"] == "trial.trial_idx"
    assert metadata.get("subject") != "delta"
    assert (folder / "s1.dsxckpt").read_bytes() == before


def test_an_illegal_successor_is_illegal_history(served: Any) -> None:
    """docs/service.md, Error codes: ILLEGAL_HISTORY (FAILED_PRECONDITION) with its rule."""
    server, client, _ = served
    cp = make_cp("s1", trials=1)
    client.put(cp)
    other = one_more(cp)
    other.optimizer = "another.Optimizer"
    delta = dl.encode_delta(dl.diff(cp, other, base_generation=1))
    said = refusal_of(_refused(server, delta))
    code, reason, metadata = said.code, said.reason, said.metadata
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_HISTORY")
    assert metadata["rule"] == "history.optimizer"
    with pytest.raises(IllegalHistory):
        client.put_delta(dl.diff(cp, other, base_generation=1))
    assert client.get("s1").generation == 1


def test_a_session_over_the_service_commits_every_transition_as_a_delta(served: Any) -> None:
    """docs/service.md, The API: a session over the service commits every transition that way."""
    _, client, folder = served
    with session_on(client) as session:
        for i in range(3):
            session.record_trial(score=i / 4)
        session.pause()
    with session_on(client) as session:
        session.record_trial(score=0.9)
        session.complete()
    found = _records(folder / "s1.dsxckpt")
    stored = FileStore(folder).get("s1")
    # Generation 1 is the snapshot of the create; every later commit is one record.
    assert [record.generation for record in found] == list(range(2, stored.generation + 1))
    assert len(found) >= 7  # 3 trials, a pause, a resume, a trial, completion
    assert ck.status_name(stored.checkpoint) == "completed"
