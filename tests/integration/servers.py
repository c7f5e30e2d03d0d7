"""Real processes for the tests that start servers: a free port, a process's children, and a
throwaway PostgreSQL cluster the test owns (so it may stop, start and break it).

The cluster needs PostgreSQL's server binaries (``initdb``, ``pg_ctl``), not TEST_DATABASE_URL's
server: tests that use it run wherever those binaries are installed (Debian's
``/usr/lib/postgresql/<version>/bin`` or ``PATH``), and are skipped with that reason elsewhere.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opply.entrypoints.config import EXAMPLE_SELLER

NO_SERVER_BINARIES = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or on "
    "PATH: install the PostgreSQL server package to run the tests that start their own cluster"
)
NO_POSTGRES_USER = "running as root and there is no 'postgres' user to run the server as"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_env(**values: str) -> dict[str, str]:
    """A clean environment for the server: the venv's commands first, nothing of ours leaking."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPPLY_", "PROMETHEUS_", "GUNICORN_", "RATELIMIT_"))
        and key not in ("DATABASE_URL", "SECRET_KEY", "WEB_CONCURRENCY", "PORT")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(EXAMPLE_SELLER)  # production refuses to start without the seller's details
    env.update(values)
    return env


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers, for its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the ppid follows the ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


@dataclass
class Cluster:
    """A throwaway PostgreSQL server in a temporary folder, driven with pg_ctl: TCP on
    127.0.0.1:``port``, its unix socket in ``root``, trust authentication, no fsync."""

    bin_dir: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # the server refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            "pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def log(self, tail: int = 4000) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A new cluster, started; stopped and deleted afterwards. Skips the test without the
    server binaries."""
    bin_dir = server_binaries()
    if bin_dir is None:
        pytest.skip(NO_SERVER_BINARIES)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(NO_POSTGRES_USER)
    root = Path(tempfile.mkdtemp(prefix="opply-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(bin_dir, root, free_port())
    try:
        cluster.run("initdb", "-D", str(root / "data"), "-U", "postgres", "-A", "trust", "-N")
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
