"""`make image-test`: build the Dockerfile with Podman and check the image against PostgreSQL.

No Docker engine runs on the CI machines and no container registry is reachable, so:

1. A Debian 12 base with Python 3.11 from Debian is made with debootstrap and imported into
   Podman as a local image. It stands in for ``python:3.11-slim`` through the Dockerfile's
   ``PYTHON_IMAGE`` build argument. The machine's CA bundle is copied in: the machine reaches
   PyPI through a TLS proxy that only its own CAs vouch for. The base is cached under ``.image/``
   (git-ignored) and made again only when its recipe (the constants and ``make_base`` below,
   the CA bundle) changes.
2. The Dockerfile is built unchanged, in Docker's format (the OCI format has no HEALTHCHECK).
3. The image runs with host networking against a throwaway database on the machine's
   PostgreSQL and its Redis, and is checked as a deployment uses it: the start command migrates
   the database; /healthz, /readyz, the API and a login answer; the rate limits count in Redis;
   every process runs as the image's non-root user; pip and setuptools are gone; the HEALTHCHECK
   command passes (and fails against a dead port); SIGTERM stops gunicorn gracefully: a request
   in flight is answered, the exit code is 0 and the master says so within the grace period.

Podman is configured for this machine in files under ``.image/`` (nothing in /etc changes):
the vfs storage driver, which needs nothing from the kernel or the file system under it; runc
(crun refuses the machine's hybrid cgroups); cgroupfs and file events (no systemd); nofile and
nproc limits below the machine's hard limits (the VM cannot raise them, Podman's defaults are
higher).

Needs root (apt-get, debootstrap, rootful Podman) and 2 GB of free disk, checked first.
Environment: IMAGE_TEST_DATABASE_URL (an admin URL of the PostgreSQL server; default postgres
on 127.0.0.1:5432), IMAGE_TEST_REDIS_URL (the rate limits' store; default database 14 of the
Redis on 127.0.0.1:6379), DEBIAN_MIRROR (default http://deb.debian.org/debian).
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from opply.adapters.migrations import runner
from opply.entrypoints.demo import DEMO_CUSTOMER

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".image"
NEEDED_BYTES = 2_000_000_000  # a cold run peaked at 0.9 GB (base, build stages, image in vfs)
ADMIN_URL = os.environ.get(
    "IMAGE_TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
# Production refuses per-process rate limits with several workers: they are counted in Redis.
REDIS_URL = os.environ.get("IMAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
TOOLS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}  # command: package

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
# python-is-python3: the Dockerfile and its HEALTHCHECK call `python`, as on python:*-slim.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
# What python:*-slim sets and an imported file system lacks.
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
# Left by debootstrap for apt and for people; python:*-slim has none of it either.
BASE_PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
              "usr/share/locale")  # fmt: skip
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

IMAGE = "localhost/opply:image-test"
CONTAINER = "opply-image-test"
APP_UID = 10001  # the Dockerfile's USER
WORKERS = 2
GRACE_SECONDS = 10  # GUNICORN_GRACEFUL_TIMEOUT for the run
READY_SECONDS = 90


class CheckFailed(Exception):
    """A check of the image did not hold."""


def say(message: str) -> None:
    print(f"[image-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def fail(message: str) -> SystemExit:
    return SystemExit(f"image-test: {message}")


@dataclass
class Timings:
    rows: list[tuple[str, float]]

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.rows.append((name, time.monotonic() - start))

    def table(self) -> str:
        return "  ".join(f"{name} {seconds:.0f}s" for name, seconds in self.rows)


# --- the machine ------------------------------------------------------------------------------


def check_disk() -> None:
    free = shutil.disk_usage(ROOT).free
    if free < NEEDED_BYTES:
        raise fail(
            f"{free / 1e9:.1f} GB free on the disk of {ROOT}, {NEEDED_BYTES / 1e9:.1f} GB needed "
            "(Podman's vfs storage keeps a full copy of the file system per layer). "
            f"Free some space, or remove {WORK} if an older run left it."
        )


def ensure_tools() -> None:
    if os.geteuid() != 0:
        raise fail("run as root: it installs packages, runs debootstrap and rootful Podman")
    missing = sorted({package for command, package in TOOLS.items() if not shutil.which(command)})
    if not missing:
        return
    say(f"installing {' '.join(missing)} with apt")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # No recommends: storage is vfs and networking the host's, so fuse-overlayfs, slirp4netns
    # and uidmap are not needed; recommends would also pull in crun.
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise fail(f"`{' '.join(command[:2])}` failed:\n{result.stdout}{result.stderr}")


def check_services() -> None:
    """The container uses the machine's PostgreSQL and Redis: say so now, not after the build."""
    engine = create_engine(make_url(ADMIN_URL))
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        message = f"PostgreSQL at {ADMIN_URL} does not answer (IMAGE_TEST_DATABASE_URL)"
        raise fail(f"{message}: {error}") from None
    finally:
        engine.dispose()
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=5).ping()
    except redis.RedisError as error:
        message = f"Redis at {REDIS_URL} does not answer (IMAGE_TEST_REDIS_URL)"
        raise fail(f"{message}: {error}") from None


@contextmanager
def exclusive_work_dir() -> Iterator[None]:
    """One run at a time per checkout: runs would share the storage and the container name."""
    WORK.mkdir(exist_ok=True)
    with (WORK / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise fail(f"another image-test is running in {ROOT}") from None
        yield


def _hard_limit(which: int, cap: int) -> int:
    hard = resource.getrlimit(which)[1]
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


def podman_environment() -> dict[str, str]:
    """Private configuration files for Podman; CONTAINERS_CONF makes it ignore the system's."""
    # Run state lives for one run only: a stale one (after a reboot) would confuse Podman.
    for transient in ("run", "tmp"):
        shutil.rmtree(WORK / transient, ignore_errors=True)
    # Podman's default limits are above the VM's hard limits (open files: 20000 here), which it
    # may not raise: the container gets the machine's hard limit for files, and 4096 processes
    # (above Podman's own 32768 fails here; a test container needs few).
    nofile = _hard_limit(resource.RLIMIT_NOFILE, 1_048_576)
    nproc = _hard_limit(resource.RLIMIT_NPROC, 4096)
    containers_conf = WORK / "containers.conf"
    containers_conf.write_text(
        "# Written by docker/image_test.py: Podman set up for this machine (see there).\n"
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'tmp_dir = "{WORK / "tmp"}"\n'
        "[network]\n"
        f'network_config_dir = "{WORK / "networks"}"\n'
    )
    storage_conf = WORK / "storage.conf"
    storage_conf.write_text(
        "# Written by docker/image_test.py.\n"
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{WORK / "storage"}"\n'
        f'runroot = "{WORK / "run"}"\n'
    )
    return {
        **os.environ,
        "CONTAINERS_CONF": str(containers_conf),
        "CONTAINERS_STORAGE_CONF": str(storage_conf),
    }


class Podman:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, log: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = ["podman", *args]
        if log is None:
            result = subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
            )
        else:
            with log.open("w") as out:
                result = subprocess.run(
                    command, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True,
                    timeout=timeout, check=False,
                )  # fmt: skip
        if check and result.returncode != 0:
            output = log.read_text() if log else result.stdout + result.stderr
            tail = "\n".join(output.splitlines()[-40:])
            raise fail(f"`podman {' '.join(args[:2])}` failed ({result.returncode}):\n{tail}")
        return result

    def remove_leftovers(self) -> None:
        """Containers an interrupted run left: ours, and the build's working containers."""
        listed = self.run("ps", "--all", "--external", "--quiet", "--no-trunc")
        for container in listed.stdout.split():
            self.run("rm", "--force", container, check=False)

    def exists(self, image: str) -> bool:
        return self.run("image", "exists", image, check=False).returncode == 0

    def inspect_image(self, image: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self.run("image", "inspect", image).stdout)
        return data[0]


# --- the base ---------------------------------------------------------------------------------


def remove_rootfs(rootfs: Path) -> None:
    """Delete a file system debootstrap made, unmounting first what an interrupted run left
    mounted in it (/proc, /sys, device nodes): deleting through those would reach the machine's."""
    if not rootfs.exists():
        return
    prefix = str(rootfs.resolve()) + "/"
    mounted = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounted if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=True)
    shutil.rmtree(rootfs)


def make_base(tarball: Path) -> None:
    rootfs = WORK / "rootfs.tmp"
    remove_rootfs(rootfs)
    log = WORK / "debootstrap.log"
    with log.open("w") as out:
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR],
            stdout=out, stderr=subprocess.STDOUT, check=False, timeout=900,
        )  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise fail(f"debootstrap failed ({result.returncode}), see {log}:\n{tail}")
    for relative in BASE_PRUNE:
        for child in (rootfs / relative).iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    bundle = rootfs / "etc/ssl/certs/ca-certificates.crt"
    bundle.unlink(missing_ok=True)  # never write through a link into the machine's files
    shutil.copyfile(HOST_CA_BUNDLE, bundle)
    partial = tarball.with_suffix(".partial")
    subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial), "."],
        check=True,
    )
    partial.rename(tarball)
    remove_rootfs(rootfs)


def base_recipe_key() -> str:
    recipe = {
        "suite": DEBIAN_SUITE,
        "mirror": DEBIAN_MIRROR,
        "packages": BASE_PACKAGES,
        "env": BASE_ENV,
        "prune": BASE_PRUNE,
        "steps": inspect.getsource(make_base),
        "ca": hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def base_image(podman: Podman, timings: Timings) -> str:
    key = base_recipe_key()
    image = f"localhost/opply-base:{key}"
    tarball = WORK / f"base-{key}.tar"
    if podman.exists(image):
        say(f"base {image}: cached")
    else:
        if tarball.exists():
            say(f"base {image}: importing the cached {tarball.name}")
        else:
            say(f"base {image}: debootstrap {DEBIAN_SUITE} from {DEBIAN_MIRROR}")
            with timings.phase("debootstrap"):
                make_base(tarball)
        changes = [f"--change=ENV {name}={value}" for name, value in BASE_ENV.items()]
        podman.run("import", *changes, '--change=CMD ["python3"]', str(tarball), image)
    for stale in WORK.glob("base-*.tar"):
        if stale != tarball:
            stale.unlink()
    listed = podman.run("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/opply-base")
    for other in listed.stdout.split():
        if other != image:
            podman.run("rmi", other, check=False)
    return image


# --- the image --------------------------------------------------------------------------------


def build(podman: Podman, base: str) -> None:
    # --layers=false: with vfs every cached layer and every step's working container is a full
    # copy of the file system, which made builds with the layer cache several times slower (2 to
    # 3 min against 30 s, pip included) and peak at 3 to 6 GB of disk. Only the base is cached.
    log = WORK / "build.log"
    say(f"building the Dockerfile on {base} (log: {log})")
    podman.run(
        "build", "--layers=false", "--format", "docker", "--network", "host", "--pull=never",
        "--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", f"OPPLY_GIT_COMMIT={commit()}",
        "--tag", IMAGE, str(ROOT),
        timeout=1200, log=log,
    )  # fmt: skip
    podman.run("image", "prune", "--force")  # the previous run's image, now untagged


def commit() -> str:
    """The commit being tested: the image must report it on /healthz."""
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def unused_port() -> int:
    """A port nobody listens on, below the kernel's ephemeral range: outgoing connections take
    ports in that range at any moment, and one did between our look and gunicorn's bind."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = ephemeral_low // 2 + secrets.randbelow(ephemeral_low // 2)
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))  # noqa: S104 - as gunicorn will
            except OSError:
                continue
            return port
    raise fail("found no unused port")


@contextmanager
def throwaway_database() -> Iterator[URL]:
    admin = make_url(ADMIN_URL)
    name = f"opply_image_{secrets.token_hex(4)}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin.set(database=name)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def call(url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """GET, or POST ``body`` as JSON: the status and the decoded answer."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - our own URL
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@dataclass(frozen=True)
class Process:
    pid: int
    pid_in_container: int
    uids: tuple[int, ...]
    gids: tuple[int, ...]
    groups: tuple[int, ...]
    command: str


def container_processes(pid: int) -> list[Process]:
    """Every process in the container's PID namespace, read from the machine's /proc."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns/pid") != namespace:
                continue
            status = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines()
            )
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # it exited while we looked, or is the machine's init

        def numbers(field: str, status: dict[str, str] = status) -> tuple[int, ...]:
            return tuple(int(n) for n in status[field].split())

        found.append(
            Process(
                pid=int(entry.name),
                pid_in_container=numbers("NSpid")[-1],
                uids=numbers("Uid"),
                gids=numbers("Gid"),
                groups=numbers("Groups"),
                command=command,
            )
        )
    return found


class ImageChecks:
    """The checks, in the order a deployment meets them; each raises CheckFailed."""

    def __init__(self, podman: Podman, database: URL) -> None:
        self.podman = podman
        self.database = database
        self.port = unused_port()
        self.passed: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ok(self, message: str) -> None:
        self.passed.append(message)
        say(f"ok: {message}")

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise CheckFailed(message)

    def logs(self) -> str:
        result = self.podman.run("logs", CONTAINER, check=False)
        return result.stdout + result.stderr

    def start(self) -> None:
        environment = {
            "DATABASE_URL": self.database.render_as_string(hide_password=False),
            "SECRET_KEY": secrets.token_urlsafe(48),
            # The seller every invoice names: production refuses to start without it.
            "SELLER_NAME": "Opply Image Test GmbH",
            "SELLER_ADDRESS": "Musterstraße 1\\n10115 Berlin",
            "SELLER_VAT_ID": "DE000000000",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(WORKERS),
            "GUNICORN_GRACEFUL_TIMEOUT": str(GRACE_SECONDS),
            "RATELIMIT_STORAGE_URI": REDIS_URL,
        }
        # Host networking: the machine's PostgreSQL and Redis on loopback, and no CNI set-up.
        options = ["--detach", "--name", CONTAINER, "--network", "host"]
        for name, value in environment.items():
            options += ["--env", f"{name}={value}"]
        self.podman.run("run", *options, IMAGE)

    def container_pid(self) -> int:
        state = json.loads(
            self.podman.run("inspect", "--format", "{{json .State}}", CONTAINER).stdout
        )
        self.expect(state["Running"], f"the container is not running: {state.get('Status')}")
        pid: int = state["Pid"]
        return pid

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            self.container_pid()
            try:
                status, _ = call(f"{self.base_url}/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise CheckFailed(f"/readyz did not answer 200 within {READY_SECONDS} s")

    def migrations_ran(self) -> None:
        head = runner.head_revision()
        self.expect(
            f"database at revision {head}" in self.logs(),
            f"the start command did not report the database at revision {head}",
        )
        engine = create_engine(self.database)
        try:
            current = runner.current(engine)
        finally:
            engine.dispose()
        self.expect(current == head, f"the database is at {current}, not at head {head}")
        self.ok(f"the start command migrated the empty database to head ({head})")

    def probes_answer(self) -> None:
        status, body = call(self.base_url + "/readyz")
        self.expect((status, body) == (200, {"status": "ok"}), f"/readyz answered {status} {body}")
        status, body = call(self.base_url + "/healthz")
        release = {"status": "ok", "version": version("opply"), "commit": commit()}
        self.expect((status, body) == (200, release), f"/healthz answered {status} {body}")
        self.ok(f"/readyz answers 200 {{'status': 'ok'}}, /healthz 200 {body}")

    def api_answers(self) -> None:
        loaded = self.podman.run("exec", CONTAINER, "opply", "demo", "load", check=False)
        self.expect(loaded.returncode == 0, f"`opply demo load` failed: {loaded.stderr}")
        engine = create_engine(self.database)
        try:
            with engine.connect() as connection:
                products = connection.execute(text("SELECT count(*) FROM products")).scalar_one()
        finally:
            engine.dispose()
        status, body = call(f"{self.base_url}/api/v1/products/?page_size=100")
        self.expect(status == 200, f"GET /api/v1/products/ answered {status}: {body}")
        self.expect(
            products > 0 and body["count"] == products and len(body["results"]) == products,
            f"the API lists {body.get('count')} products, the database holds {products}",
        )
        self.ok(f"`opply demo load` ran in the container; the API lists its {products} products")

    def login_counts_in_redis(self) -> None:
        username, password = DEMO_CUSTOMER
        hashed = hashlib.sha256(username.casefold().encode()).hexdigest()
        store = redis.Redis.from_url(REDIS_URL)
        for stale in store.scan_iter(match=f"*{hashed}*"):  # an earlier run's, still counting
            store.delete(stale)
        status, tokens = call(
            f"{self.base_url}/api/token/", body={"username": username, "password": password}
        )
        self.expect(status == 200, f"logging in as {username} answered {status}: {tokens}")
        status, me = call(f"{self.base_url}/api/v1/me/", token=tokens["access"])
        self.expect(
            status == 200 and me["username"] == username, f"/api/v1/me/ answered {status} {me}"
        )
        counted = list(store.scan_iter(match=f"*{hashed}*"))
        self.expect(bool(counted), "the login attempt was not counted in Redis")
        self.ok(f"{username} logs in and /api/v1/me/ knows them; the attempt counted in Redis")

    def runs_as_non_root(self) -> None:
        processes = container_processes(self.container_pid())
        summary = "; ".join(f"{p.command} uid={p.uids} gid={p.gids}" for p in processes)
        self.expect(len(processes) == 1 + WORKERS, f"expected master + {WORKERS}: {summary}")
        for process in processes:
            self.expect(
                set(process.uids) == {APP_UID}
                and set(process.gids) == {APP_UID}
                and set(process.groups) <= {APP_UID},
                f"a process runs with other ids: {summary}",
            )
        (master,) = [p for p in processes if p.pid_in_container == 1]
        self.expect("gunicorn" in master.command, f"PID 1 is not gunicorn: {master.command}")
        self.ok(
            f"all {len(processes)} processes (gunicorn as PID 1 and {WORKERS} workers) run as "
            f"uid/gid {APP_UID}, no other groups"
        )

    def has_no_installers(self) -> None:
        probe = (
            "import importlib.util as u, json, shutil; print(json.dumps("
            "[m for m in ('pip', 'setuptools') if u.find_spec(m)]"
            " + [c for c in ('pip', 'pip3', 'easy_install') if shutil.which(c)]))"
        )
        result = self.podman.run("exec", CONTAINER, "python", "-c", probe)
        found = json.loads(result.stdout)
        self.expect(found == [], f"the runtime image still has {found}")
        self.ok("no pip or setuptools in the runtime image (neither importable nor on PATH)")

    def healthcheck_works(self) -> None:
        config = self.podman.inspect_image(IMAGE).get("Healthcheck") or {}
        test = config.get("Test") or []
        self.expect(bool(test) and test[0] in ("CMD", "CMD-SHELL"), f"no HEALTHCHECK: {config}")
        result = self.podman.run("healthcheck", "run", CONTAINER, check=False)
        self.expect(result.returncode == 0, f"the HEALTHCHECK failed: {result.stdout}")
        command = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
        dead_port = str(unused_port())
        dead = self.podman.run("exec", "--env", f"PORT={dead_port}", CONTAINER, *command,
                               check=False)  # fmt: skip
        self.expect(dead.returncode != 0, "the HEALTHCHECK command passed against a dead port")
        self.ok(
            f"the image's HEALTHCHECK (every {config.get('Interval', 0) // 10**9} s) passes, "
            f"and its command fails against a dead port ({dead_port})"
        )

    def stops_gracefully_on_sigterm(self) -> None:
        # A request in flight when SIGTERM arrives: a worker has accepted the connection and
        # waits for the end of the headers, which come only after the signal.
        client = socket.create_connection(("127.0.0.1", self.port), timeout=GRACE_SECONDS + 5)
        with client:
            client.sendall(b"GET /api/v1/products/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(0.5)
            started = time.monotonic()
            self.podman.run("kill", "--signal", "TERM", CONTAINER)
            time.sleep(1)
            client.sendall(b"\r\n")
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        waited = self.podman.run("wait", CONTAINER, timeout=GRACE_SECONDS + 30)
        elapsed = time.monotonic() - started
        exit_code = int(waited.stdout.strip())
        status_line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
        self.expect(status_line == "HTTP/1.1 200 OK", f"the request in flight got {status_line!r}")
        self.expect(exit_code == 0, f"gunicorn exited with {exit_code} on SIGTERM")
        self.expect(elapsed < GRACE_SECONDS, f"stopping took {elapsed:.1f} s")
        logs = self.logs()
        for line in ("Handling signal: term", "Shutting down: Master"):
            self.expect(line in logs, f"the log does not say {line!r}")
        self.ok(
            f"SIGTERM: the request in flight got 200, gunicorn logged its shutdown and exited 0 "
            f"after {elapsed:.1f} s (grace {GRACE_SECONDS} s)"
        )

    def run_all(self) -> None:
        for attempt in range(3):
            self.start()
            try:
                self.wait_ready()
                break
            except CheckFailed:
                if attempt == 2 or "Address already in use" not in self.logs():
                    raise
                say(f"port {self.port} was taken before gunicorn bound it: another one")
                self.podman.run("rm", "--force", CONTAINER)
                self.port = unused_port()
        self.migrations_ran()
        self.probes_answer()
        self.api_answers()
        self.login_counts_in_redis()
        self.runs_as_non_root()
        self.has_no_installers()
        self.healthcheck_works()
        self.stops_gracefully_on_sigterm()


def main() -> int:
    timings = Timings(rows=[])
    started = time.monotonic()
    check_disk()
    check_services()
    with exclusive_work_dir():
        with timings.phase("tools"):
            ensure_tools()
        podman = Podman(podman_environment())
        podman.remove_leftovers()
        with timings.phase("base"):
            base = base_image(podman, timings)
        with timings.phase("build"):
            build(podman, base)
        size = podman.inspect_image(IMAGE)["Size"]
        say(f"built {IMAGE}: {size / 1e6:.0f} MB")
        with timings.phase("run"), throwaway_database() as database:
            checks = ImageChecks(podman, database)
            try:
                checks.run_all()
            except CheckFailed as failure:
                print(checks.logs()[-4000:], file=sys.stderr)
                raise fail(f"check failed: {failure}") from None
            finally:
                podman.run("rm", "--force", CONTAINER, check=False)
    total = time.monotonic() - started
    say(f"{len(checks.passed)} checks passed; image {size / 1e6:.0f} MB")
    say(f"timings: {timings.table()}  total {total:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
