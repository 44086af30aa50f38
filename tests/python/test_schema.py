"""The schema's promises: buf lint/breaking guard v1, and the restricted proto subset holds."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "tools" / "node_modules" / ".bin" / "buf"
BASELINE = ROOT / "tests" / "schema" / "v1.0.binpb"
PROTO_DIR = ROOT / "proto" / "dsxir" / "optimizer_session" / "v1"
V1_FILES = ("checkpoint.proto", "term.proto")


def _breaking(tree: Path) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), "buf is missing: run 'make tools'"
    return subprocess.run(
        [str(BUF), "breaking", "--against", str(BASELINE)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_schema_is_compatible_with_v1_0() -> None:
    result = _breaking(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


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
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    for name in V1_FILES:
        path = tmp_path / "proto" / "dsxir" / "optimizer_session" / "v1" / name
        path.write_text(path.read_text().replace(old, new))
    assert _breaking(tmp_path).returncode != 0


def test_schema_uses_only_the_byte_stable_subset() -> None:
    for name in V1_FILES:
        text = (PROTO_DIR / name).read_text()
        code = "\n".join(line.split("//")[0] for line in text.splitlines())
        for banned in ("map<", "google.protobuf.Struct", "google.protobuf.Value", "Any", "group"):
            assert banned not in code, (name, banned)
        assert "[packed" not in code and "extend " not in code
        for enum_body in re.findall(r"enum \w+ \{([^}]*)\}", code):
            first = re.search(r"(\w+) = 0;", enum_body)
            assert first and first.group(1).endswith("_UNSPECIFIED")
        for message, body in re.findall(r"message (\w+) \{((?:[^{}]|\{[^{}]*\})*)\}", code):
            if "oneof" in body:
                outside = re.sub(r"oneof \w+ \{[^}]*\}", "", body)
                assert not re.search(r"= \d+;", outside), f"{message}: a oneof must be all"
