"""The scheme registry: one scheme, one backend; third-party backends join by entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsxir.store import FileStore, MemoryStore, MissingExtra, open_store, register_scheme
from dsxir.store.registry import ENTRY_POINT_GROUP, schemes
from store_util import make_cp

HERE = Path(__file__).resolve().parents[1]


def test_built_in_schemes_open_their_backends(tmp_path: Path) -> None:
    assert isinstance(open_store(f"file:{tmp_path}"), FileStore)
    assert isinstance(open_store(f"FILE://{tmp_path}"), FileStore)
    assert isinstance(open_store("memory:"), MemoryStore)
    assert open_store("memory:shared") is open_store("memory:shared")
    assert {"file", "memory", "postgresql", "postgres", "grpc", "grpcs"} <= set(schemes())


@pytest.mark.parametrize("url", ["bogus:x", "/bare/path", "relative", "C:\\data", "9x:y", ""])
def test_unknown_schemes_and_bare_paths_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="store URL") as info:
        open_store(url)
    assert repr(url) in str(info.value)


def test_a_registered_scheme_opens_with_its_opener(tmp_path: Path) -> None:
    seen: list[str] = []

    def opener(url: str) -> MemoryStore:
        seen.append(url)
        return MemoryStore()

    register_scheme("registered-test", opener)
    store = open_store("registered-test:anything")
    assert isinstance(store, MemoryStore) and seen == ["registered-test:anything"]
    assert "registered-test" in schemes()


@pytest.mark.parametrize("scheme", ["file", "memory", "postgresql", "grpc"])
def test_built_in_schemes_cannot_be_taken_over(scheme: str) -> None:
    with pytest.raises(ValueError, match="built in"):
        register_scheme(scheme, lambda url: MemoryStore())


@pytest.mark.parametrize("scheme", ["Upper", "", "with space", "1digit"])
def test_invalid_scheme_names_are_refused(scheme: str) -> None:
    with pytest.raises(ValueError, match="invalid scheme"):
        register_scheme(scheme, lambda url: MemoryStore())


def _run(program: str, extra_path: list[Path]) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([*map(str, extra_path), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )


def test_an_installed_package_adds_a_backend_through_its_entry_point(tmp_path: Path) -> None:
    # A distribution on the path whose entry point names the toy backend's opener,
    # exactly as CONTRIBUTING.md tells a third-party package to declare it.
    info = tmp_path / "site" / "toy_backend-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ntoy-sqlite = toy_store:open_url\n"
    )
    database = tmp_path / "sessions.sqlite"
    program = f"""
from dsxir.store import open_store
from dsxir.store.registry import schemes
from store_util import make_cp
store = open_store("toy-sqlite:{database}")
print(type(store).__name__, store.put(make_cp("s1")), "toy-sqlite" in schemes())
"""
    result = _run(program, [tmp_path / "site", HERE])
    assert result.stdout.split() == ["ToySqliteStore", "1", "True"], result.stderr
    import toy_store

    assert toy_store.open_url(f"toy-sqlite:{database}").get("s1").generation == 1
    assert make_cp("s1").session_id == "s1"


@pytest.mark.parametrize(
    ("url", "blocked", "extra"),
    [
        ("postgresql://user@127.0.0.1:1/db", "psycopg", "postgres"),
        ("grpc://127.0.0.1:1", "grpc", "service"),
    ],
)
def test_a_missing_extra_is_named_with_its_pip_command(url: str, blocked: str, extra: str) -> None:
    program = f"""
import sys
sys.modules[{blocked!r}] = None
from dsxir.store import MissingExtra, open_store
try:
    open_store({url!r})
except MissingExtra as exc:
    print(exc.extra, "|", exc)
"""
    result = _run(program, [])
    assert result.stdout.startswith(f"{extra} | "), result.stderr
    assert f"pip install 'dsxir-checkpoint[{extra}]'" in result.stdout
    assert issubclass(MissingExtra, ImportError)


def test_the_command_line_names_a_missing_extra_in_one_line() -> None:
    program = """
import sys
sys.modules["grpc"] = None
sys.argv = ["dsxir-checkpoint", "ls", "--store", "grpc://127.0.0.1:1"]
from dsxir.cli.main import main
main()
"""
    result = _run(program, [])
    assert result.returncode == 7, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "[service]" in lines[0] and "Traceback" not in result.stderr
