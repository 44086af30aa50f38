"""A throwaway local PostgreSQL cluster, for tests and benchmarks.

:class:`LocalCluster` runs ``initdb`` and ``pg_ctl`` from Debian's
PostgreSQL (``/usr/lib/postgresql/15/bin``, or ``$SERVICE_PG_BIN``) in a new
temporary folder, listening on a unix socket in that folder and on a free
port of ``127.0.0.1`` only, with ``trust`` authentication for the user
``dsxir`` (acceptable only because nothing but this machine can connect).
PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` system user (``runuser``), which owns the folder.
:meth:`LocalCluster.destroy` stops it and removes the folder; a cluster
whose creating process died without doing so is removed by the next
:class:`LocalCluster` (:meth:`LocalCluster.reap_orphans`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from types import TracebackType

__all__ = ["DEFAULT_BIN", "LocalCluster"]

DEFAULT_BIN = "/usr/lib/postgresql/15/bin"
"""Where Debian's postgresql-15 package puts the server binaries."""
_PREFIX = "dsxir-pg-"
_OWNER = "owner.pid"


class LocalCluster:
    """A private PostgreSQL cluster in a temporary folder (see the module text)."""

    def __init__(self, bin_dir: str | None = None, *, settings: dict[str, str] | None = None):
        """Prepare (not start) a cluster; ``settings`` are extra ``postgres -c`` options."""
        self.bin_dir = bin_dir or os.environ.get("SERVICE_PG_BIN") or DEFAULT_BIN
        if not os.path.exists(os.path.join(self.bin_dir, "pg_ctl")):
            raise FileNotFoundError(
                f"no pg_ctl in {self.bin_dir}: install postgresql-15 (make service-postgres)"
            )
        self.user = "dsxir"
        self.reap_orphans(self.bin_dir)
        self.folder = tempfile.mkdtemp(prefix=_PREFIX)
        with open(os.path.join(self.folder, _OWNER), "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
        self.data = os.path.join(self.folder, "data")
        self.log = os.path.join(self.folder, "postgres.log")
        self.port = _free_port()
        self._settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": self.folder,
            "max_connections": "200",
            **(settings or {}),
        }
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.folder, 0o700)
        self._initialized = False
        self.running = False

    @classmethod
    def reap_orphans(cls, bin_dir: str) -> int:
        """Stop and remove clusters whose creating process is gone; return how many.

        A process killed before it could destroy its cluster (SIGKILL, a
        timeout) leaves it running; the next cluster created on the machine
        cleans it up. Clusters of living processes are never touched.
        """
        reaped = 0
        for folder in glob.glob(os.path.join(tempfile.gettempdir(), _PREFIX + "*")):
            try:
                with open(os.path.join(folder, _OWNER), encoding="ascii") as handle:
                    owner = int(handle.read().strip())
            except (OSError, ValueError):
                continue
            if _alive(owner):
                continue
            data = os.path.join(folder, "data")
            if os.path.exists(os.path.join(data, "postmaster.pid")):
                run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
                subprocess.run(
                    [*run_as, os.path.join(bin_dir, "pg_ctl"), "stop", "-w", "-m", "immediate",
                     "-D", data],
                    stdin=subprocess.DEVNULL, capture_output=True, check=False,
                )  # fmt: skip
            shutil.rmtree(folder, ignore_errors=True)
            reaped += 1
        return reaped

    def url(self, **params: str) -> str:
        """A ``postgresql://`` URL of the cluster's ``postgres`` database over TCP."""
        query = "&".join(f"{key}={value}" for key, value in params.items())
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres" + (
            f"?{query}" if query else ""
        )

    def start(self) -> None:
        """Create the cluster on first start, then start it and wait until it accepts."""
        if not self._initialized:
            self._pg(
                "initdb",
                "-D",
                self.data,
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            self._initialized = True
        options = " ".join(f"-c {key}={value}" for key, value in self._settings.items())
        self._pg(
            "pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.log, "-o", options
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (``fast``: end sessions; ``immediate``: like a crash)."""
        if self.running:
            self._pg("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", self.data)
            self.running = False

    def restart(self) -> None:
        """Stop (fast) and start again on the same port."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the cluster and remove its folder."""
        try:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server log (for failure messages)."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.destroy()

    def _pg(self, program: str, *args: str) -> None:
        command = [*self._run_as, os.path.join(self.bin_dir, program), *args]
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode,
                command,
                output=result.stdout,
                stderr=result.stderr + "\n" + self.log_tail(),
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
