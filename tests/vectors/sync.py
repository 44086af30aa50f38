"""Writing a generator's files, or checking that the committed ones match them.

Imports nothing of the vectors folder, so every generator (run as a script
from its own folder) can use it.
"""

from __future__ import annotations

import sys
from pathlib import Path


def sync(
    files: dict[str, bytes], on_disk: dict[str, bytes], root: Path, *, check: bool, shown: str
) -> int:
    """Make ``root`` hold ``files`` (paths relative to it), or with ``check`` only compare.

    ``on_disk`` is what the generator owns under ``root`` now. With ``check``
    nothing is written: each path that is missing, extra or different is
    printed to stderr as ``stale <shown><path>`` and the answer is 1 when
    there is one, else 0. Without it, the paths only on disk are removed and
    every file is written (folders made as needed); the answer is 0.
    """
    stale = sorted(set(files) ^ set(on_disk) | {k for k in files if on_disk.get(k) != files[k]})
    if check:
        for name in stale:
            print(f"stale {shown}{name}", file=sys.stderr)
        return 1 if stale else 0
    for name in set(on_disk) - set(files):
        (root / name).unlink()
    for name, raw in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    return 0
