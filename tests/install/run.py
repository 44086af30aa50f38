"""Installs every language's package into a fresh project outside the repository.

``make test-install`` runs this after ``make dist``. For each language a new
project in a temporary folder installs the package the way a user would, and
a small program (the folders next to this file) reads the golden vectors of
``tests/vectors/valid`` (written by the Python library), passed by path. Each
prints one line per file: name, session id, status number, trial count and
whether re-encoding gave the same bytes; the lines must equal the ones
computed here from the vectors' JSON.

- Python: a new virtualenv installs the wheel of dist/ (dependencies from the
  package index, pinned by python/requirements-lock.txt); the program runs with
  the C accelerator and without it (DSXIR_PURE_PYTHON=1), and the console
  script ``dsxir-checkpoint validate`` checks the files. A second virtualenv
  installs the sdist with no working C compiler: the pure-Python package.
- TypeScript: ``npm init -y`` and ``npm install`` of the tarball of dist/.
- Go: a new module requiring github.com/dsxir/dsxir-checkpoint/go, replaced
  by the checkout's go/ folder.
- Java: a Maven project (java/pom.xml here) on com.dsxir:dsxir-checkpoint from
  the local Maven repository, offline.
- Rust: a cargo project with a path dependency on the crate of dist/, unpacked.

Usage: run.py [--dist DIR] [--rust-target-dir DIR] [--keep] [LANGUAGE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VECTORS = ROOT / "tests" / "vectors"
LOCK = ROOT / "python" / "requirements-lock.txt"
GO_MODULE = "github.com/dsxir/dsxir-checkpoint/go"
LANGUAGES = ("python", "typescript", "go", "java", "rust")

# Nothing of the checkout may leak into the consumers through the environment.
_DROPPED_ENV = ("PYTHONPATH", "VIRTUAL_ENV", "NODE_PATH", "CLASSPATH", "GOWORK", "CARGO_TARGET_DIR")


class Failed(Exception):
    """A step of a language failed; the message says which and why."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


def env(**extra: str) -> dict[str, str]:
    """The environment of the consumers: ours without the variables above."""
    result = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    result.update(extra)
    return result


def run(cmd: Sequence[str | Path], cwd: Path, extra_env: dict[str, str] | None = None) -> str:
    """Runs a command and returns its stdout; raises Failed with its output otherwise."""
    argv = [str(c) for c in cmd]
    proc = subprocess.run(
        argv, cwd=cwd, env=env(**(extra_env or {})), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        shown = " ".join(argv)
        shown = shown if len(shown) < 300 else shown[:300] + " ..."
        raise Failed(
            f"`{shown}` (in {cwd}) exited with {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}--- stderr\n{proc.stderr[-4000:]}",
            proc.stderr,
        )
    return proc.stdout


def vector_files() -> list[Path]:
    """The valid vectors of the manifest, in its order."""
    manifest = json.loads((VECTORS / "manifest.json").read_text())
    return [VECTORS / entry["binpb"] for entry in manifest["valid"]]


def expected_lines(files: list[Path]) -> list[str]:
    """What every program must print, from each vector's JSON and the schema's enum."""
    proto = (ROOT / "proto/dsxir/optimizer_session/v1/checkpoint.proto").read_text()
    statuses = {m[1]: int(m[2]) for m in re.finditer(r"\b(SESSION_STATUS_\w+) = (\d+);", proto)}
    lines = []
    for path in files:
        doc = json.loads(path.with_suffix(".json").read_text())
        status = statuses[doc.get("status", "SESSION_STATUS_UNSPECIFIED")]
        trials = len(doc.get("progress", {}).get("trialLog", []))
        lines.append(
            f"{path.stem} session_id={doc.get('sessionId', '')} status={status}"
            f" trials={trials} reencoded=identical"
        )
    return lines


def compare(what: str, output: str, expected: list[str]) -> None:
    """Fails unless the output's lines (but `#` comments) are the expected ones."""
    got = [line for line in output.splitlines() if not line.startswith("#")]
    if got != expected:
        pairs = zip(expected, got, strict=False)
        diff = [f"  expected: {e}\n  got:      {g}" for e, g in pairs if e != g]
        if len(got) != len(expected):
            diff.append(f"  {len(expected)} lines expected, {len(got)} printed")
        raise Failed(f"{what}: wrong output\n" + "\n".join(diff))


def only(dist: Path, pattern: str) -> Path:
    """The one file of dist/ matching a pattern."""
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        names = [p.name for p in found]
        raise Failed(f"expected one {pattern} in {dist}, found {names}: run make dist")
    return found[0]


def venv(where: Path) -> Path:
    """A new virtualenv of this interpreter's base Python; returns its python.

    It has no pip of its own (ensurepip is slow): ours installs into it.
    """
    run([sys.executable, "-m", "venv", "--without-pip", where], cwd=where.parent)
    return where / "bin" / "python"


def pip_install(python: Path, *args: str | Path, extra_env: dict[str, str] | None = None) -> None:
    """pip install into the virtualenv of python, with the versions of the lock file."""
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
    options = ["--disable-pip-version-check", "-c", LOCK]
    run([*pip, *options, *args], cwd=python.parents[2], extra_env=extra_env)


def no_testee(package: Path, names: list[str]) -> None:
    """Refuse a published package that carries a conformance testee."""
    carried = [name for name in names if "testee" in name.lower()]
    if carried:
        raise Failed(f"{package.name} carries the conformance testee: {carried[:3]}")


def test_python(work: Path, dist: Path, files: list[Path], expected: list[str]) -> list[str]:
    wheel = only(dist, "dsxir_checkpoint-*.whl")
    sdist = only(dist, "dsxir_checkpoint-*.tar.gz")
    no_testee(wheel, zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as archive:
        no_testee(sdist, archive.getnames())
    program = HERE / "python" / "read_checkpoints.py"
    notes = []

    python = venv(work / "venv")
    pip_install(python, wheel)
    has_accel = any(n.startswith("dsxir/_accel") for n in zipfile.ZipFile(wheel).namelist())
    out = run([python, program, *files], cwd=work)
    header = out.splitlines()[0]
    if f"package={work / 'venv'}" not in header or f"accelerated={has_accel}" not in header:
        raise Failed(f"wheel: expected the venv's package, accelerated={has_accel}: {header}")
    compare("wheel", out, expected)
    notes.append(f"wheel {wheel.name} (C accelerator {'in use' if has_accel else 'absent'})")

    out = run([python, program, *files], cwd=work, extra_env={"DSXIR_PURE_PYTHON": "1"})
    if "accelerated=False" not in out.splitlines()[0]:
        raise Failed(f"DSXIR_PURE_PYTHON=1 still accelerated: {out.splitlines()[0]}")
    compare("wheel, DSXIR_PURE_PYTHON=1", out, expected)
    notes.append("pure Python (DSXIR_PURE_PYTHON=1)")

    out = run([work / "venv" / "bin" / "dsxir-checkpoint", "validate", *files], cwd=work)
    compare("dsxir-checkpoint validate", out, [f"{path}: ok" for path in files])
    notes.append("console script `dsxir-checkpoint validate`")

    # The sdist where no C compiler works: it installs without the accelerator.
    python = venv(work / "venv-sdist")
    pip_install(python, "setuptools", "wheel")
    pip_install(python, "--no-build-isolation", sdist, extra_env={"CC": "false"})
    out = run([python, program, *files], cwd=work)
    if "accelerated=False" not in out.splitlines()[0]:
        raise Failed(f"sdist without a compiler has the accelerator: {out.splitlines()[0]}")
    compare("sdist without a C compiler", out, expected)
    notes.append(f"sdist {sdist.name} without a C compiler (pure Python)")
    return notes


def test_typescript(work: Path, dist: Path, files: list[Path], expected: list[str]) -> list[str]:
    tarball = only(dist, "dsxir-checkpoint-*.tgz")
    with tarfile.open(tarball) as archive:
        no_testee(tarball, archive.getnames())
    npm = ("--no-audit", "--no-fund", "--loglevel=error")
    run(["npm", "init", "-y", "--loglevel=error"], cwd=work)
    run(["npm", "install", *npm, "--prefer-offline", tarball], cwd=work)
    shutil.copy(HERE / "typescript" / "read_checkpoints.mjs", work)
    compare("node", run(["node", "read_checkpoints.mjs", *files], cwd=work), expected)
    return [f"npm install {tarball.name}"]


def test_go(work: Path, dist: Path, files: list[Path], expected: list[str]) -> list[str]:
    go_env = {"GOWORK": "off", "GOFLAGS": "-mod=mod"}
    shutil.copy(HERE / "go" / "main.go", work)
    # The checkout's go.sum has every hash the consumer needs.
    shutil.copy(ROOT / "go" / "go.sum", work)
    run(["go", "mod", "init", "example.com/installcheck"], cwd=work, extra_env=go_env)
    edit = [f"-require={GO_MODULE}@v0.0.0", f"-replace={GO_MODULE}={ROOT / 'go'}"]
    run(["go", "mod", "edit", *edit], cwd=work, extra_env=go_env)
    run(["go", "mod", "tidy"], cwd=work, extra_env=go_env)
    compare("go run", run(["go", "run", ".", *files], cwd=work, extra_env=go_env), expected)
    packages = run(["go", "list", "./..."], cwd=ROOT / "go", extra_env={"GOWORK": "off"})
    no_testee(ROOT / "go" / "go.mod", packages.splitlines())
    return [f"require {GO_MODULE} v0.0.0 + replace => {ROOT / 'go'}"]


def test_java(work: Path, dist: Path, files: list[Path], expected: list[str]) -> list[str]:
    shutil.copytree(HERE / "java", work, dirs_exist_ok=True)
    mvn = ["mvn", "-B", "-o", "-q", "--no-transfer-progress", "-Dstyle.color=never"]
    goals = ["compile", "dependency:build-classpath", "-Dmdep.outputFile=classpath.txt"]
    run([*mvn, *goals], cwd=work)
    classpath = (work / "classpath.txt").read_text().strip()
    jar = [p for p in classpath.split(os.pathsep) if Path(p).name.startswith("dsxir-checkpoint-")]
    if len(jar) != 1:
        raise Failed(f"no com.dsxir:dsxir-checkpoint jar on the classpath: {classpath}")
    no_testee(Path(jar[0]), zipfile.ZipFile(jar[0]).namelist())
    cp = os.pathsep.join([str(work / "target" / "classes"), classpath])
    out = run(["java", "-cp", cp, "example.ReadCheckpoints", *files], cwd=work)
    compare("java", out, expected)
    return [f"com.dsxir:dsxir-checkpoint from the local repository ({jar[0]})"]


def test_rust(
    work: Path, dist: Path, files: list[Path], expected: list[str], target_dir: Path | None
) -> list[str]:
    crate = only(dist, "dsxir-checkpoint-*.crate")
    with tarfile.open(crate) as archive:
        no_testee(crate, archive.getnames())
        archive.extractall(work, filter="data")
    (work / crate.name.removesuffix(".crate")).rename(work / "dsxir-checkpoint")
    consumer = work / "consumer"
    shutil.copytree(HERE / "rust", consumer)
    # The crate's own lock: the same dependency versions as the repository's builds.
    shutil.copy(work / "dsxir-checkpoint" / "Cargo.lock", consumer)
    cargo_env = {"CARGO_TARGET_DIR": str(target_dir or work / "target")}
    cargo = ["cargo", "run", "--quiet"]
    try:
        out = run([*cargo, "--offline", "--", *files], cwd=consumer, extra_env=cargo_env)
    except Failed as offline:
        # A crate missing from cargo's cache: fetch it from the registry.
        if "offline mode" not in offline.stderr:
            raise
        out = run([*cargo, "--", *files], cwd=consumer, extra_env=cargo_env)
    compare("cargo run", out, expected)
    return [f"path dependency on {crate.name}, unpacked"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("languages", nargs="*", metavar="LANGUAGE", help=", ".join(LANGUAGES))
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="the packages (make dist)")
    parser.add_argument(
        "--rust-target-dir", type=Path, help="cargo's build folder, kept between runs for speed"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = parser.parse_args()
    unknown = sorted(set(args.languages) - set(LANGUAGES))
    if unknown:
        parser.error(f"unknown language(s) {unknown}; choose from {', '.join(LANGUAGES)}")
    dist = args.dist.resolve()
    target_dir = args.rust_target_dir.resolve() if args.rust_target_dir else None

    files = vector_files()
    expected = expected_lines(files)
    tests: dict[str, Callable[[Path], list[str]]] = {
        "python": lambda w: test_python(w, dist, files, expected),
        "typescript": lambda w: test_typescript(w, dist, files, expected),
        "go": lambda w: test_go(w, dist, files, expected),
        "java": lambda w: test_java(w, dist, files, expected),
        "rust": lambda w: test_rust(w, dist, files, expected, target_dir),
    }
    top = Path(tempfile.mkdtemp(prefix="dsxir-install-"))
    print(f"test-install: {len(files)} vectors of {VECTORS / 'valid'}, projects in {top}")
    failures = 0
    try:
        for language in args.languages or LANGUAGES:
            work = top / language
            work.mkdir()
            start = time.monotonic()
            try:
                notes = tests[language](work)
            except Failed as failure:
                failures += 1
                print(f"FAIL {language} ({time.monotonic() - start:.0f}s): {failure}", flush=True)
                continue
            seconds = time.monotonic() - start
            print(f"ok   {language} ({seconds:.0f}s): " + "; ".join(notes), flush=True)
    finally:
        if args.keep:
            print(f"kept {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
    if failures:
        print(f"test-install: {failures} language(s) failed")
        return 1
    print(f"test-install: every package read the {len(files)} vectors identically")
    return 0


if __name__ == "__main__":
    sys.exit(main())
