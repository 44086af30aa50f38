"""The schema's promises: buf lint/breaking guard v1, and the restricted proto subset holds."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUF = ROOT / "tools" / "node_modules" / ".bin" / "buf"
SCHEMA = ROOT / "tests" / "schema"
PACKAGES = ("optimizer_session", "checkpoint_store")
"""Each proto package is versioned alone, against its own baseline."""
PROTO_DIR = ROOT / "proto" / "dsxir" / "optimizer_session" / "v1"
V1_FILES = ("checkpoint.proto", "term.proto")


def _copy_workspace(tmp_path: Path) -> None:
    """buf.yaml and every module it lists (the schema, the testee's protocol)."""
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    for module in re.findall(r"^\s*- path: (\S+)$", (ROOT / "buf.yaml").read_text(), re.M):
        shutil.copytree(ROOT / module, tmp_path / module)


def _breaking(tree: Path, package: str) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), "buf is missing: run 'make tools'"
    return subprocess.run(
        [str(BUF), "breaking", "--against", str(SCHEMA / f"{package}-v1.0.binpb")],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_is_compatible_with_its_v1_0(package: str) -> None:
    result = _breaking(ROOT, package)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_baselines_are_one_package_each() -> None:
    # The format's baseline holds the format alone, so changing the service
    # can never count as changing the format.
    for package in PACKAGES:
        image = (SCHEMA / f"{package}-v1.0.binpb").read_bytes()
        others = [other for other in PACKAGES if other != package]
        assert f"dsxir/{package}/v1/".encode() in image
        if package == "optimizer_session":
            assert all(f"dsxir/{other}/".encode() not in image for other in others)


def test_the_service_is_not_in_the_format_package() -> None:
    for path in PROTO_DIR.glob("*.proto"):
        assert "service " not in path.read_text(), path.name


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("string session_id = 2;", "bytes session_id = 2;"),  # type change
        ("string optimizer = 3;", "string optimizer = 30;"),  # renumbering
        ("optional double score = 3;", "double score = 3;"),  # presence change
        ("    sint64 int_value = 3;\n", ""),  # removing a Term kind's field
    ],
)
def test_buf_breaking_catches_incompatible_changes(tmp_path: Path, old: str, new: str) -> None:
    _copy_workspace(tmp_path)
    for name in V1_FILES:
        path = tmp_path / "proto" / "dsxir" / "optimizer_session" / "v1" / name
        path.write_text(path.read_text().replace(old, new))
    assert _breaking(tmp_path, "optimizer_session").returncode != 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int64 generation = 1;", "string generation = 1;"),  # type change
        ("GENERATION_CONFLICT = 2;", "GENERATION_CONFLICT = 200;"),  # renumbering a reason
    ],
)
def test_buf_breaking_guards_the_service_alone(tmp_path: Path, old: str, new: str) -> None:
    _copy_workspace(tmp_path)
    folder = tmp_path / "proto" / "dsxir" / "checkpoint_store" / "v1"
    for path in folder.glob("*.proto"):
        path.write_text(path.read_text().replace(old, new))
    assert _breaking(tmp_path, "checkpoint_store").returncode != 0
    assert _breaking(tmp_path, "optimizer_session").returncode == 0


def test_schema_uses_only_the_byte_stable_subset() -> None:
    for name in V1_FILES:
        text = (PROTO_DIR / name).read_text()
        code = "\n".join(line.split("//")[0] for line in text.splitlines())
        for banned in ("map<", "google.protobuf.Struct", "google.protobuf.Value", "Any", "group"):
            assert banned not in code, (name, banned)
        assert "[packed" not in code and "extend " not in code
        for enum_name, enum_body in re.findall(r"enum (\w+) \{([^}]*)\}", code):
            first = re.search(r"(\w+) = 0;", enum_body)
            # Direction's zero is a real direction: the meaning of a v1.0 checkpoint.
            zero = "DIRECTION_HIGHER" if enum_name == "Direction" else "_UNSPECIFIED"
            assert first and first.group(1).endswith(zero), enum_name
        for message, body in re.findall(r"message (\w+) \{((?:[^{}]|\{[^{}]*\})*)\}", code):
            if "oneof" in body:
                outside = re.sub(r"oneof \w+ \{[^}]*\}", "", body)
                assert not re.search(r"= \d+;", outside), f"{message}: a oneof must be all"
