"""The layers of the Python package, read from its import graph.

format (``dsxir.errors``, ``dsxir.optimizer_session``) ← service protocol
(``dsxir.checkpoint_store``, generated) ← stores (``dsxir.store``, every
backend) ← session runner (``dsxir.session``) ← integrations with optimizer
libraries (``dsxir.integrations``) ← server (``dsxir.service``) ← command
line (``dsxir.cli``). A module imports only from its own layer or lower ones,
and the integrations and the server not from each other; the format imports
no application dependency; store backends live in ``dsxir.store`` alone;
test and benchmark code stays out of the installed package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "dsxir"

LAYERS = [
    ("format", ("dsxir.errors", "dsxir._accel", "dsxir.optimizer_session")),
    ("protocol", ("dsxir.checkpoint_store",)),
    ("store", ("dsxir.store",)),
    ("session", ("dsxir.session",)),
    ("integrations", ("dsxir.integrations",)),
    ("service", ("dsxir.service",)),
    ("cli", ("dsxir.cli",)),
]
APPLICATION_DEPENDENCIES = (
    "click",
    "rich",
    "grpc",
    "grpc_health",
    "grpc_reflection",
    "google.rpc",
    "psycopg",
    "psycopg_pool",
    "google_crc32c",
    "matplotlib",
)


def _layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != "dsxir":
            found[name] = path
    return found


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_every_module_belongs_to_a_layer() -> None:
    modules = _modules()
    assert len(modules) > 40
    for name in modules:
        _layer(name)


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_imports_from_a_higher_layer(name: str) -> None:
    own = _layer(name)
    for imported in _imports(_modules()[name]):
        if imported.split(".")[0] != "dsxir" or imported == "dsxir":
            continue
        if imported in _modules() or imported.rsplit(".", 1)[0] in _modules():
            target = imported if imported in _modules() else imported.rsplit(".", 1)[0]
            assert _layer(target) <= own, f"{name} ({LAYERS[own][0]}) imports {target}"


def test_the_integrations_and_the_server_do_not_import_each_other() -> None:
    apart = {"dsxir.integrations": "dsxir.service", "dsxir.service": "dsxir.integrations"}
    for name, path in _modules().items():
        for own, other in apart.items():
            if name == own or name.startswith(own + "."):
                for imported in _imports(path):
                    assert not (imported == other or imported.startswith(other + ".")), (
                        name,
                        imported,
                    )


def test_the_session_runner_is_a_layer_of_its_own() -> None:
    assert "dsxir.session" in _modules()
    assert _layer("dsxir.store") < _layer("dsxir.session") < _layer("dsxir.integrations")
    assert _layer("dsxir.session") < _layer("dsxir.service") < _layer("dsxir.cli")


def test_the_format_imports_no_application_dependency() -> None:
    for name, path in _modules().items():
        if _layer(name) != 0:
            continue
        for imported in _imports(path):
            assert not imported.startswith(APPLICATION_DEPENDENCIES), (name, imported)


def test_the_format_works_without_any_application_dependency() -> None:
    blocked = "; ".join(f"sys.modules[{dep!r}] = None" for dep in APPLICATION_DEPENDENCIES)
    program = f"""
import sys
{blocked}
from dsxir.optimizer_session import checkpoint
cp = checkpoint.new(session_id="s", optimizer="o", trainset_hash=bytes(32),
                    sampler_blob=b"", sampler_format=("m", 1))
checkpoint.record_trial(cp, score=0.5, stats={{"tokens": 3}})
assert checkpoint.encode(checkpoint.decode(checkpoint.encode(cp))) == checkpoint.encode(cp)
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert result.stdout == "ok\n", result.stderr


def test_store_backends_live_in_the_store_package() -> None:
    # A backend is a class with the interface's four methods.
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                methods = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
                if {"put", "get", "list", "delete"} <= methods:
                    assert name.startswith("dsxir.store."), f"{name}.{node.name}"


def test_no_test_or_benchmark_code_ships() -> None:
    for name, path in _modules().items():
        leaf = name.rsplit(".", 1)[-1]
        assert not leaf.startswith(("test", "bench", "conftest")) and leaf != "cluster", name
        for imported in _imports(path):
            assert not imported.startswith(("pytest", "hypothesis")), (name, imported)
