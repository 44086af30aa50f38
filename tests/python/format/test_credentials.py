"""The credential screen of FORMAT.md §10: every writer, every way in, both modes.

The rule's lists and shapes and the shared cases come from the JSON block of
FORMAT.md §10, which the Go and TypeScript tests read too. Each test that
writes runs twice: with the compiled screen (when the accelerator is built
and enabled) and with the pure-Python prefilter.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsxir.errors import InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import credentials, grammar, terms
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap
from dsxir.store import FileStore, MemoryStore

R = credentials.REDACTED
FORMAT_MD = Path(__file__).resolve().parents[3] / "FORMAT.md"
_BLOCK = re.compile(
    r"<!-- credential-cases:begin -->\s*```json\n(.*?)```\s*<!-- credential-cases:end -->", re.S
)
_REPEAT = re.compile(r"\{([^{}*]+)\*(\d+)\}")


def expand(value: Any) -> Any:
    """``{s*n}`` in every string of a case stands for ``s`` written ``n`` times."""
    if isinstance(value, str):
        return _REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), value)
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, dict):
        return {expand(k): expand(v) for k, v in value.items()}
    return value


def _cases() -> dict[str, Any]:
    match = _BLOCK.search(FORMAT_MD.read_text(encoding="utf-8"))
    assert match is not None, "FORMAT.md §10 lost its credential cases"
    cases: dict[str, Any] = json.loads(match.group(1))
    return cases


CASES = _cases()
SECRET_TEXTS = [expand(t) for t, r in CASES["texts"] if t != r]
HASH = ck.hash_trainset([{"q": "2+2", "a": "4"}])
BEARER = "Bearer " + "t0" * 12
QUERY_KEY = "GET https://api.example.com/v1/models?key=" + "k1" * 10 + " failed: 403"


# --- both modes -----------------------------------------------------------------


@pytest.fixture(params=["compiled", "pure"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the compiled screen, then with the pure-Python prefilter."""
    if request.param == "compiled":
        if credentials.check_screened is None:
            pytest.skip("the accelerator is not in use")
    else:
        for name in ("check_screened", "screen_term", "screen_term_map", "clean_text"):
            monkeypatch.setattr(credentials, name, None)
    return str(request.param)


def make(**kw: Any) -> Checkpoint:
    args: dict[str, Any] = {
        "session_id": "s1",
        "optimizer": "demo.Opt",
        "trainset_hash": HASH,
        "sampler_blob": b"state",
        "sampler_format": ("demo.Sampler", 1),
    }
    args.update(kw)
    return ck.new(**args)


def refused_at(call: Callable[[], Any]) -> str:
    with pytest.raises(InvalidCheckpoint) as info:
        call()
    return info.value.path


def with_trial(cp: Checkpoint) -> Checkpoint:
    ck.record_trial(cp, score=0.5, stats={"tokens": 3})
    return cp


def term_of(value: Any) -> Term:
    return Term.FromString(terms.term_bytes(value))


def map_of(value: Any) -> TermMap:
    return TermMap.FromString(terms.map_body(value))


# --- the rule is the one of FORMAT.md -------------------------------------------------


def test_rule_lists_are_the_ones_of_format_md() -> None:
    rule = CASES["rule"]
    assert sorted(credentials.SECRET_WORDS) == rule["secret_words"]
    assert sorted(credentials.KEY_QUALIFIERS) == rule["key_qualifiers"]
    assert sorted(credentials.HEAD_WORDS) == rule["head_words"]
    assert sorted(credentials.QUERY_NAMES) == rule["query_names"]
    assert [list(shape) for shape in credentials.SHAPES] == rule["shapes"]


@pytest.mark.parametrize(("key", "expected"), CASES["keys"], ids=lambda v: repr(v))
def test_key_rule(key: str, expected: bool) -> None:
    assert credentials.credential_key(key) is expected
    assert credentials.looks_secret(ck.Atom(key)) is expected
    if credentials.screen_term_map is not None:  # the compiled key rule
        assert credentials.screen_term_map(terms.map_body({key: "x"})) is not expected
        assert credentials.screen_term_map(terms.map_body({ck.Atom(key): ["x"]})) is not expected
        assert credentials.screen_term_map(terms.map_body({key: 1.5})) is True


@pytest.mark.parametrize(("text", "redacted"), CASES["texts"], ids=range(len(CASES["texts"])))
def test_value_rule(text: str, redacted: str) -> None:
    text, redacted = expand(text), expand(redacted)
    assert credentials.redact_text(text) == redacted
    assert credentials.has_secret(text) is (text != redacted)
    assert credentials.redact_text(redacted) == redacted  # idempotent
    assert not credentials.has_secret(redacted)


@pytest.mark.parametrize(("text", "redacted"), CASES["texts"], ids=range(len(CASES["texts"])))
def test_texts_as_candidate_ids_and_reasons(mode: str, text: str, redacted: str) -> None:
    text, redacted = expand(text), expand(redacted)
    cp = make()
    if text == redacted:
        ck.record_trial(cp, score=1.0, candidate_id=text)
        ck.encode(cp)
        return
    assert refused_at(lambda: ck.record_trial(cp, score=1.0, candidate_id=text)) == "candidate_id"
    assert len(cp.progress.trial_log) == 0  # nothing changed
    ck.record_trial(cp, score=1.0, candidate_id=text, redact_secrets=True)
    assert cp.progress.trial_log[0].candidate_id == redacted
    # built with the protobuf API, then encoded
    cp.progress.trial_log[0].candidate_id = text
    assert refused_at(lambda: ck.encode(cp)) == "progress.trial_log[0].candidate_id"
    assert refused_at(lambda: ck.fail(cp, reason=text)) == "reason"
    ck.fail(cp, reason=text, redact_secrets=True)
    assert ck.from_term(cp.terminal_reason) == redacted


@pytest.mark.parametrize("case", CASES["terms"], ids=range(len(CASES["terms"])))
def test_term_cases(mode: str, case: dict[str, Any]) -> None:
    value = expand(case["term"])
    at = case["at"]
    expected = expand(case.get("redacted"))
    # In terminal_reason, built with the protobuf API.
    cp = make()
    cp.terminal_reason.CopyFrom(term_of(value))
    if at is None:
        assert ck.decode(ck.encode(cp)) == cp
    else:
        assert refused_at(lambda: ck.encode(cp)) == f"terminal_reason.{at}"
        sealed = grammar.seal(cp.SerializeToString(deterministic=True))
        assert ck.decode(sealed) == cp  # readers read it
        if expected is None:
            assert refused_at(lambda: ck.encode(cp, redact_secrets=True)).startswith(
                "terminal_reason."
            )
        else:
            before = cp.SerializeToString(deterministic=True)
            out = ck.decode(ck.encode(cp, redact_secrets=True))
            assert ck.from_term(out.terminal_reason) == expected
            assert cp.SerializeToString(deterministic=True) == before  # cp itself unchanged
            assert ck.encode(out) == ck.encode(out, redact_secrets=True)
    # In trial stats (maps only), built with the protobuf API.
    if isinstance(value, dict):
        cp = with_trial(make())
        cp.progress.trial_log[0].stats.CopyFrom(map_of(value))
        if at is None:
            ck.encode(cp)
        else:
            assert refused_at(lambda: ck.encode(cp)) == (
                "progress.trial_log[0].stats." + at.removeprefix("map_value.")
            )
    # Through the transitions, from Python values.
    cp = make()
    if at is None:
        ck.complete(cp, reason=value)
        assert ck.from_term(cp.terminal_reason) == value
        return
    refused_at(lambda: ck.complete(cp, reason=value))
    assert ck.status_name(cp) == "running"
    if expected is None:
        refused_at(lambda: ck.complete(cp, reason=value, redact_secrets=True))
    else:
        ck.complete(cp, reason=value, redact_secrets=True)
        assert ck.from_term(cp.terminal_reason) == expected
        ck.encode(cp)


@pytest.mark.parametrize("case", CASES["options"], ids=range(len(CASES["options"])))
def test_option_cases(mode: str, case: dict[str, Any]) -> None:
    key, value, at = expand(case["key"]), expand(case["value"]), case["at"]
    expected = expand(case.get("redacted"))
    cp = make()
    cp.optimizer_opts.add(key=key).value.CopyFrom(term_of(value))
    if at is None:
        ck.encode(cp)
        make(optimizer_opts=[(key, value)])
        return
    assert refused_at(lambda: ck.encode(cp)) == at
    assert refused_at(lambda: make(optimizer_opts=[(key, value)])).startswith("optimizer_opts[0]")
    if expected is None:
        refused_at(lambda: ck.encode(cp, redact_secrets=True))
        refused_at(lambda: make(optimizer_opts=[(key, value)], redact_secrets=True))
    else:
        out = ck.decode(ck.encode(cp, redact_secrets=True))
        assert ck.from_term(out.optimizer_opts[0].value) == expected
        built = make(optimizer_opts=[(key, value)], redact_secrets=True)
        assert ck.from_term(built.optimizer_opts[0].value) == expected


# --- every way in ---------------------------------------------------------------------


@dataclasses.dataclass
class LMConfig:
    model: str
    api_key: str


class ToDict:
    def __init__(self, **values: Any) -> None:
        self._values = values

    def toDict(self) -> dict[str, Any]:
        return dict(self._values)


class ItemsOnly:
    def __init__(self, **values: Any) -> None:
        self._values = values

    def items(self) -> Any:
        return self._values.items()


class ReadOnly(Mapping[str, Any]):
    def __init__(self, **values: Any) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


SECRET = "s3cr3t-value"
KEY_NAMES = [
    "api_key",
    "apiKey",
    "OPENAI_API_KEY",
    "Authorization",
    "secret_key",
    "api_keys",
    "bearer",
    "credential",
    "credentials",
    "passphrase",
    "password",
    "cookie",
    "jwt",
    "signing_key",
    "private_key",
    "access_key_id",
    "client_secret",
    "hf_token",
    "session_token",
    "auth",
    "x-api-key",
    "set_cookie",
    "refresh_token",
    "access_token",
    "db_password",
    "AWS_SECRET_ACCESS_KEY",
    "githubToken",
]

# One text of each shape of the value rule (no complete token is written down).
SHAPED = {
    "sk- key": "key " + "sk-proj-" + "a1" * 12,
    "GitHub token": "ghp_" + "Ab1" * 12,
    "GitHub fine-grained token": "github_pat_" + "A1" * 11,
    "Slack token": "xoxb-" + "1a" * 6,
    "AWS access key id": "AKIA" + "Z9" * 8,
    "Google API key": "AIza" + "Sy" * 17 + "x",
    "Hugging Face token": "hf_" + "aB" * 16,
    "GitLab token": "glpat-" + "x1" * 10,
    "JWT": "eyJ" + "hb" * 5 + ".eyJ" + "zd" * 5 + "." + "sg" * 5,
    "private key block": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n",
    "URL password": "redis://:pw@cache:6379/0",
    "query parameter": "https://x.example/cb?access_token=abc&state=1",
    "assignment": "dsn: host=db user=app password=pw",
    "quoted pair": "bad headers {'Authorization': 'Basic dXNlcjpwYXNz'}",
}


def _new_with(opts: Any, **kw: Any) -> Callable[[], Checkpoint]:
    return lambda: make(optimizer_opts=opts, **kw)


def _trial(**kw: Any) -> Callable[[], Any]:
    cp = make()
    return lambda: ck.record_trial(cp, score=0.5, **kw)


def _terminal(name: str, reason: Any) -> Callable[[], Any]:
    cp = make()
    return lambda: getattr(ck, name)(cp, reason=reason)


def _encode_built() -> Callable[[], Any]:
    cp = make()
    cp.optimizer_opts.add(key="api_key").value.string_value = SECRET
    return lambda: ck.encode(cp)


def _encode_with(where: str, value: Any) -> Callable[[], Any]:
    cp = with_trial(make())
    if where == "stats":
        cp.progress.trial_log[0].stats.CopyFrom(map_of(value))
    elif where == "artifact":
        cp.best_program_artifact.CopyFrom(map_of(value))
    else:
        cp.terminal_reason.CopyFrom(term_of(value))
    return lambda: ck.encode(cp)


def _from_json() -> Callable[[], Any]:
    cp = make()
    cp.optimizer_opts.add(key="api_key").value.string_value = SECRET
    text = json.dumps(json.loads(ck.to_json(cp)))
    return lambda: ck.from_json(text)


def _store_put(kind: str, tmp: Path) -> Callable[[], Any]:
    cp = make()
    cp.optimizer_opts.add(key="lm").value.CopyFrom(term_of({"Authorization": BEARER}))
    store = MemoryStore() if kind == "memory" else FileStore(tmp / "store")
    return lambda: store.put(cp)


def _exception() -> Exception:
    try:
        raise ConnectionError(QUERY_KEY)
    except ConnectionError as exc:
        return exc


# (name, how to write it, the path refused); every one of them must be refused.
WAYS: list[tuple[str, Callable[[Path], Callable[[], Any]], str]] = [
    *(
        (f"new option key {k}", lambda _, k=k: _new_with({k: SECRET}), "optimizer_opts[0].key")
        for k in KEY_NAMES
    ),
    *(
        (f"stats text: {kind}", lambda _, t=text: _trial(stats={"text": t}), "stats['text']")
        for kind, text in SHAPED.items()
    ),
    ("new atom value", lambda _: _new_with({"h": ck.Atom(BEARER)}), "optimizer_opts[0].value"),
    (
        "stats atom key",
        lambda _: _trial(stats={ck.Atom("api_key"): SECRET}),
        "stats[Atom(name='api_key')]",
    ),
    (
        "new nested key",
        lambda _: _new_with({"lm": {"model": "m", "api_key": SECRET}}),
        "optimizer_opts[0].value['api_key']",
    ),
    (
        "new dataclass",
        lambda _: _new_with({"lm": LMConfig("m", SECRET)}),
        "optimizer_opts[0].value['api_key']",
    ),
    (
        "new toDict()",
        lambda _: _new_with({"lm": ToDict(model="m", password=SECRET)}),
        "optimizer_opts[0].value['password']",
    ),
    (
        "new items() only",
        lambda _: _new_with({"lm": ItemsOnly(model="m", jwt=SECRET)}),
        "optimizer_opts[0].value['jwt']",
    ),
    (
        "new Mapping",
        lambda _: _new_with({"lm": ReadOnly(cookie=SECRET)}),
        "optimizer_opts[0].value['cookie']",
    ),
    (
        "new list of maps",
        lambda _: _new_with({"lms": [{"x": 1}, {"credential": SECRET}]}),
        "optimizer_opts[0].value[1]['credential']",
    ),
    ("new bearer value", lambda _: _new_with({"header": BEARER}), "optimizer_opts[0].value"),
    ("new option key text", lambda _: _new_with({"token=" + SECRET: 1}), "optimizer_opts[0].key"),
    ("stats key", lambda _: _trial(stats={"api_key": SECRET}), "stats['api_key']"),
    ("stats dataclass", lambda _: _trial(stats=LMConfig("m", SECRET)), "stats['api_key']"),
    ("stats toDict()", lambda _: _trial(stats=ToDict(secret=SECRET)), "stats['secret']"),
    ("stats items() only", lambda _: _trial(stats=ItemsOnly(passwd=SECRET)), "stats['passwd']"),
    ("stats text", lambda _: _trial(stats={"url": "https://u:pw@h/x"}), "stats['url']"),
    ("error map", lambda _: _trial(status="error", error={"token": SECRET}), "error['token']"),
    (
        "error exception text",
        lambda _: _trial(status="error", error=_exception()),
        "error['message']",
    ),
    ("candidate id", lambda _: _trial(candidate_id="c-" + BEARER), "candidate_id"),
    (
        "best artifact",
        lambda _: _trial(best_program_artifact={"demos": [{"private_key": SECRET}]}),
        "best_program_artifact['demos'][0]['private_key']",
    ),
    ("fail reason text", lambda _: _terminal("fail", QUERY_KEY), "reason"),
    ("fail reason map", lambda _: _terminal("fail", {"api_key": SECRET}), "reason['api_key']"),
    ("cancel reason", lambda _: _terminal("cancel", ["x", BEARER]), "reason[1]"),
    ("complete reason", lambda _: _terminal("complete", {"auth": SECRET}), "reason['auth']"),
    ("encode built option", lambda _: _encode_built(), "optimizer_opts[0].key"),
    (
        "encode built stats",
        lambda _: _encode_with("stats", {"secret": SECRET}),
        "progress.trial_log[0].stats.entries[0].key",
    ),
    (
        "encode built artifact",
        lambda _: _encode_with("artifact", {"x": BEARER}),
        "best_program_artifact.entries[0].value.string_value",
    ),
    (
        "encode built reason",
        lambda _: _encode_with("reason", QUERY_KEY),
        "terminal_reason.string_value",
    ),
    ("from_json", lambda _: _from_json(), "optimizer_opts[0].key"),
    (
        "MemoryStore.put",
        lambda tmp: _store_put("memory", tmp),
        "optimizer_opts[0].value.map_value.entries[0].key",
    ),
    (
        "FileStore.put",
        lambda tmp: _store_put("file", tmp),
        "optimizer_opts[0].value.map_value.entries[0].key",
    ),
]


def test_there_are_at_least_53_ways() -> None:
    assert len(WAYS) >= 53


@pytest.mark.parametrize(("name", "build", "path"), WAYS, ids=[w[0] for w in WAYS])
def test_every_way_in_is_refused(
    mode: str, tmp_path: Path, name: str, build: Callable[[Path], Callable[[], Any]], path: str
) -> None:
    call = build(tmp_path)
    with pytest.raises(InvalidCheckpoint) as info:
        call()
    assert info.value.path == path
    message = str(info.value)
    for secret in (SECRET, "k1" * 10, "t0" * 12, ":pw@"):
        assert secret not in message


def test_the_refused_store_writes_nothing(mode: str, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    cp = make()
    cp.optimizer_opts.add(key="api_key").value.string_value = SECRET
    refused_at(lambda: store.put(cp))
    assert list(store.list()) == []
    memory = MemoryStore()
    refused_at(lambda: memory.put(cp))
    assert list(memory.list()) == []


def test_the_service_put_refuses_credentials(tmp_path: Path) -> None:
    """The service's Put decodes (readers do not screen), then its store encodes."""
    grpc = pytest.importorskip("grpc")
    from dsxir.optimizer_session.wire import varint
    from dsxir.store.grpc import GrpcStore
    from dsxir.store.grpc.protocol import SERVICE_NAME
    from service_fixtures import serve_in_thread

    store = MemoryStore()
    server = serve_in_thread(store)
    channel = grpc.insecure_channel(server.address)
    try:
        cp = make()
        cp.optimizer_opts.add(key="api_key").value.string_value = SECRET
        body = grammar.seal(cp.SerializeToString(deterministic=True))
        put = channel.unary_unary(f"/{SERVICE_NAME}/PutCheckpoint")
        with pytest.raises(grpc.RpcError) as info:
            put(b"\x0a" + varint(len(body)) + body, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "optimizer_opts[0].key" in info.value.details()
        assert SECRET not in info.value.details()
        assert list(store.list()) == []
        client = GrpcStore(server.address)
        assert refused_at(lambda: client.put(cp)) == "optimizer_opts[0].key"  # refused locally
        client.close()
    finally:
        channel.close()
        server.stop(1)


# --- redaction --------------------------------------------------------------------------


def test_redaction_on_every_writer(mode: str) -> None:
    cp = make(
        optimizer_opts={
            "Authorization": BEARER,
            "lm": LMConfig("gpt", SECRET),
            "base": "https://user:pw@api.example.com/v1?api_key=abc&page=2",
            "max_tokens": 256,
        },
        redact_secrets=True,
    )
    assert [ck.from_term(o.value) for o in cp.optimizer_opts] == [
        R,
        {"model": "gpt", "api_key": R},
        f"https://user:{R}@api.example.com/v1?api_key={R}&page=2",
        256,
    ]
    ck.record_trial(
        cp,
        score=None,
        status="error",
        candidate_id="c1 " + BEARER,
        error=_exception(),
        redact_secrets=True,
    )
    ck.record_trial(
        cp,
        score=0.9,
        stats={"tokens": 10, "token": SECRET, "cookies": ["a", "b"]},
        best_program_artifact=ToDict(signing_key=SECRET, name="p"),
        redact_secrets=True,
    )
    first, second = cp.progress.trial_log
    assert first.candidate_id == f"c1 Bearer {R}"
    assert ck.from_term(first.error) == {
        "class": "ConnectionError",
        "message": f"GET https://api.example.com/v1/models?key={R} failed: 403",
    }
    assert ck.from_term(second.stats) == {"tokens": 10, "token": R, "cookies": R}
    assert ck.from_term(cp.best_program_artifact) == {"signing_key": R, "name": "p"}
    ck.cancel(cp, reason={"why": "x", "password": SECRET}, redact_secrets=True)
    assert ck.from_term(cp.terminal_reason) == {"why": "x", "password": R}
    data = ck.encode(cp)
    for secret in (SECRET.encode(), b"t0" * 12, b"k1" * 10, b":pw@"):
        assert secret not in data
    assert ck.encode(cp, redact_secrets=True) == data


def test_encode_and_from_json_redact(mode: str) -> None:
    cp = with_trial(make())
    cp.optimizer_opts.add(key="token").value.string_value = SECRET
    cp.progress.trial_log[0].error.CopyFrom(map_of({"message": QUERY_KEY}))
    cp.terminal_reason.CopyFrom(term_of({"api_key": SECRET}))
    text = ck.to_json(cp)
    before = cp.SerializeToString(deterministic=True)
    out = ck.decode(ck.encode(cp, redact_secrets=True))
    assert cp.SerializeToString(deterministic=True) == before
    read = ck.from_json(text, redact_secrets=True)
    for got in (out, read):
        assert ck.from_term(got.optimizer_opts[0].value) == R
        assert ck.from_term(got.terminal_reason) == {"api_key": R}
        message = ck.from_term(got.progress.trial_log[0].error)["message"]
        assert message == f"GET https://api.example.com/v1/models?key={R} failed: 403"
    assert ck.encode(out) == ck.encode(read)
    with pytest.raises(InvalidCheckpoint) as info:
        ck.from_json(text)
    assert info.value.path == "optimizer_opts[0].key"


def test_the_marker_and_harmless_values_pass(mode: str) -> None:
    cp = make(
        optimizer_opts={
            "api_key": R,
            "password": None,
            "token": "",
            "auth": False,
            "secret": 42,
            "max_token": 512,
            "jwt": 1.5,
        }
    )
    assert ck.decode(ck.encode(cp)) == cp


def test_a_secret_in_a_key_is_refused_even_with_redaction(mode: str) -> None:
    key = "sk-" + "a1" * 12
    with pytest.raises(InvalidCheckpoint, match="keys are never redacted") as info:
        ck.record_trial(make(), score=1.0, stats={key: 1}, redact_secrets=True)
    assert key not in str(info.value)
    assert info.value.path == "stats['[redacted]']"


# --- what must pass ---------------------------------------------------------------------

HARMLESS: dict[str, Any] = {
    "tokens": 120,
    "max_tokens": 512,
    "num_tokens": 7,
    "prompt_tokens": 100,
    "completion_tokens": 20,
    "total_tokens": 120,
    "token_count": 3,
    "token_usage": {"prompt": 1, "completion": 2},
    "token_type": "bpe",
    "tokenizer": "cl100k_base",
    "temperature": 0.7,
    "keyboard": "qwerty",
    "author": "someone",
    "auth_method": "none",
    "key": "value",
    "cache_key": "abc",
    "url": "https://api.example.com/v1/chat?model=gpt&stream=true",
    "mail": "user@example.com",
    "sha256": "9e" * 32,
    "hash": "0f" * 20,
    "prompt": "Answer with the key fact. Use the Bearer scheme. x = 1; y = 2",
    "text": "a task-oriented risk-free monkey typed on a keyboard",
}


def test_common_names_and_values_pass(mode: str) -> None:
    cp = make(optimizer_opts=HARMLESS)
    for i in range(3):
        ck.record_trial(
            cp,
            score=i / 3,
            candidate_id=f"cand-{i}",
            stats=HARMLESS,
            best_program_artifact={"instructions": HARMLESS["prompt"], "demos": [HARMLESS]},
        )
    ck.record_trial(cp, score=None, status="error", error=ValueError("max_tokens=512 too large"))
    ck.complete(cp, reason=HARMLESS)
    assert ck.decode(ck.encode(cp)) == cp
    assert ck.from_json(ck.to_json(cp)) == cp


def test_decode_does_not_screen() -> None:
    cp = make()
    cp.optimizer_opts.add(key="api_key").value.string_value = SECRET
    data = grammar.seal(cp.SerializeToString(deterministic=True))
    assert ck.decode(data) == cp  # readers do not screen
    with pytest.raises(InvalidCheckpoint):
        ck.encode(ck.decode(data))
    try:
        ck.check_resume(ck.decode(data), optimizer="demo.Opt", sampler_format=("demo.Sampler", 1))
    except ResumeMismatch:  # pragma: no cover
        pytest.fail("the gate does not screen either")


def test_first_finding_in_format_order(mode: str) -> None:
    cp = with_trial(make())
    cp.terminal_reason.CopyFrom(term_of(BEARER))
    cp.best_program_artifact.CopyFrom(map_of({"jwt": "x"}))
    cp.progress.trial_log[0].error.CopyFrom(map_of({"password": "x"}))
    assert refused_at(lambda: ck.encode(cp)) == "progress.trial_log[0].error.entries[0].key"
    cp.progress.trial_log[0].ClearField("error")
    assert refused_at(lambda: ck.encode(cp)) == "best_program_artifact.entries[0].key"
    cp.ClearField("best_program_artifact")
    assert refused_at(lambda: ck.encode(cp)) == "terminal_reason.string_value"
    cp.terminal_reason.CopyFrom(term_of(ck.Atom(BEARER)))
    assert refused_at(lambda: ck.encode(cp)) == "terminal_reason.atom_value"
    cp.terminal_reason.CopyFrom(term_of({ck.Atom("api_key"): "x"}))
    assert refused_at(lambda: ck.encode(cp)) == "terminal_reason.map_value.entries[0].key"


# --- the compiled screen and the prefilter agree with the reference ----------------------

FRAGMENTS = [
    "a",
    "Z",
    "0",
    "_",
    "-",
    ".",
    " ",
    "\t",
    "\n",
    "=",
    ":",
    "?",
    "&",
    "@",
    "/",
    "'",
    '"',
    "://",
    "é",
    "api",
    "key",
    "Key",
    "token",
    "tokens",
    "auth",
    "password",
    "secret",
    "bearer ",
    "Bearer ",
    "sk-",
    "ghp_",
    "xoxb-",
    "AKIA",
    "AIza",
    "hf_",
    "glpat-",
    "eyJ",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "[redacted]",
    "t0" * 6,
    "A1" * 8,
    "QWERTYUIOP",
]
texts_from_fragments = st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join)


def python_finds(value: Any) -> bool:
    """The reference: does the Python walk over the Term find anything?"""
    try:
        credentials.screen_term_bytes(terms.term_bytes(value), root="v", redact=False)
    except InvalidCheckpoint:
        return True
    return False


def _reference_finds(raw: bytes, is_map: bool) -> bool:
    walk = credentials._Walk(redact=False, python_paths=False)
    try:
        if is_map:
            walk.term_map(TermMap.FromString(raw), "v")
        else:
            walk.term(Term.FromString(raw), "v")
    except InvalidCheckpoint:
        return True
    return False


def _agree(value: Any) -> None:
    if isinstance(value, str) and credentials.clean_text is not None:
        assert credentials.clean_text(value) is not credentials.has_secret(value), value
    raw = terms.term_bytes(value)
    found = _reference_finds(raw, is_map=False)
    if credentials.screen_term is not None:
        assert credentials.screen_term(raw) is (not found), value
    if found:
        assert credentials.CANDIDATE.search(raw) is not None, value


@settings(max_examples=400, deadline=None)
@given(texts_from_fragments, texts_from_fragments)
def test_compiled_screen_and_prefilter_agree_with_python(key: str, text: str) -> None:
    _agree(text)
    _agree({key: text})
    _agree({key: 1})
    _agree([ck.Atom(text), {ck.Atom(key): [text]}])


@pytest.mark.parametrize("seed", range(3))
def test_agreement_on_random_case_mixtures(seed: int) -> None:
    rng = random.Random(seed)
    pool = [expand(t) for t, _ in CASES["texts"]] + [expand(k) for k, _ in CASES["keys"]]
    for _ in range(300):
        value = {rng.choice(pool): rng.choice([*pool, None, 1, True, {"x": rng.choice(pool)}])}
        _agree(value)
        _agree(" ".join(rng.choice(pool) for _ in range(3)))


def test_compiled_screen_of_whole_checkpoints(mode: str) -> None:
    cp = with_trial(make(optimizer_opts=HARMLESS))
    data = cp.SerializeToString(deterministic=True)
    if credentials.check_screened is not None:
        assert credentials.check_screened(data) is True
        for secret in SECRET_TEXTS:
            bad = Checkpoint()
            bad.CopyFrom(cp)
            bad.progress.trial_log[0].candidate_id = secret
            assert credentials.check_screened(bad.SerializeToString(deterministic=True)) is False
    for secret in SECRET_TEXTS:
        bad = Checkpoint()
        bad.CopyFrom(cp)
        bad.progress.trial_log[0].candidate_id = secret
        assert credentials.CANDIDATE.search(bad.SerializeToString(deterministic=True))


def test_the_prefilter_passes_common_metric_names() -> None:
    for name in ("tokens", "max_tokens", "num_tokens", "total_tokens", "temperature", "stat_0"):
        assert credentials.CANDIDATE.search(terms.map_body({name: 1})) is None
    assert python_finds({"token_count": "x"}) is False


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_the_compiled_screen_never_crashes_on_arbitrary_bytes(data: bytes) -> None:
    if credentials.check_screened is None:
        return
    import dsxir._accel as compiled

    screened = credentials.check_screened(data)
    assert screened in (True, False)
    assert not screened or compiled.check_canonical(data)  # screened implies valid
    assert credentials.screen_term is not None and credentials.screen_term_map is not None
    assert credentials.screen_term(data) in (True, False)
    assert credentials.screen_term_map(data) in (True, False)


def test_every_listed_word_is_caught_by_every_implementation_here(mode: str) -> None:
    rule = CASES["rule"]
    names = [
        *rule["secret_words"],
        *(f"{word}_key" for word in rule["key_qualifiers"]),
        *(f"{word}Keys" for word in rule["key_qualifiers"]),
        *(f"x_{word}" for word in rule["head_words"]),
    ]
    for name in names:
        assert credentials.credential_key(name), name
        assert refused_at(lambda n=name: ck.record_trial(make(), score=1.0, stats={n: "x"})) == (
            f"stats[{name!r}]"
        )
    for word in set(rule["key_qualifiers"]) - set(rule["secret_words"]):
        # a qualifier alone, or key alone, names nothing
        ck.record_trial(make(), score=1.0, stats={word: "x", "key": "x", f"{word}_id": "x"})
    for word in rule["head_words"]:  # a head word that is not last names nothing
        ck.record_trial(make(), score=1.0, stats={f"{word}_count": "x"})
