"""Reads checkpoint files with the installed dsxir-checkpoint package.

One line per file: its name, session id, status number, trial count and
whether the canonical re-encoding equals the bytes read. The first line says
where the package was imported from and whether the C accelerator is in use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dsxir
from dsxir.optimizer_session import accel
from dsxir.optimizer_session import checkpoint as ck


def main(paths: list[str]) -> None:
    print(f"# package={Path(dsxir.__file__).parent} accelerated={accel.ACCELERATED}")
    for path in map(Path, paths):
        data = path.read_bytes()
        cp = ck.decode(data)
        same = "identical" if ck.encode(cp) == data else "different"
        print(
            f"{path.stem} session_id={cp.session_id} status={cp.status}"
            f" trials={len(cp.progress.trial_log)} reencoded={same}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
