"""The Docker packaging: docker/compose.yaml, the Dockerfiles and docker/entrypoint.sh.

The stack's invariants are checked twice: on the file as Compose itself renders it
(``docker compose config``, which needs the docker client and its compose plugin
but no engine; skipped without them) and on the file as PyYAML reads it, so that
they are checked wherever the suite runs. No test builds an image or needs a
database.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
ENTRYPOINT = DOCKER_DIR / "entrypoint.sh"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
GPU_DOCKERFILE = DOCKER_DIR / "Dockerfile.gpu"

BASE_SERVICES = {"postgres", "redis", "web", "worker", "beat"}
APP_SERVICES = ("web", "worker", "beat")
ENTRYPOINT_COMMANDS = {"web", "worker", "gpu-worker", "beat", "migrate"}
PROFILES: list[tuple[str, ...]] = [(), ("gpu",)]

Service = dict[str, Any]
Build = tuple[Path, Path]


# -- reading a compose file, raw (PyYAML) or rendered (`docker compose config`) ----------


def active_services(config: dict[str, Any], profiles: Sequence[str]) -> dict[str, Service]:
    """Services that `up` would start with these profiles enabled."""
    services: dict[str, Service] = config["services"]
    return {
        name: service
        for name, service in services.items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def environment(service: Service) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {key: value for key, value in pairs}
    return {key: None if value is None else str(value) for key, value in env.items()}


def mounts(service: Service) -> dict[str, str]:
    """Container path -> volume name or host path, from short or long volume syntax."""
    result: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        result[target] = source
    return result


def build_of(service: Service) -> Build | None:
    """(context, Dockerfile) as absolute paths; relative contexts are from the compose dir."""
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = (DOCKER_DIR / build.get("context", ".")).resolve()
    return context, (context / build.get("dockerfile", "Dockerfile")).resolve()


def image_build(services: dict[str, Service], name: str) -> Build | None:
    """The build a service runs: its own, or that of the service that builds its image."""
    service = services[name]
    if (own := build_of(service)) is not None:
        return own
    for other in services.values():
        if other.get("image") == service.get("image") and other.get("build") is not None:
            return build_of(other)
    return None


def command(service: Service) -> list[str]:
    value = service.get("command") or []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def published_targets(service: Service) -> set[int]:
    targets = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            targets.add(int(port["target"]))
        else:
            targets.add(int(str(port).rsplit(":", 1)[-1].split("/")[0]))
    return targets


def check_stack(config: dict[str, Any], profiles: Sequence[str]) -> None:
    services = active_services(config, profiles)
    expected = BASE_SERVICES | ({"gpu-worker"} if "gpu" in profiles else set())
    assert set(services) == expected

    # web, worker and beat run one image, built from docker/Dockerfile at the repo root.
    assert build_of(services["web"]) == (ROOT, DOCKERFILE)
    for name in APP_SERVICES:
        assert services[name].get("image") == services["web"].get("image"), name
        assert image_build(services, name) == (ROOT, DOCKERFILE), name

    app_names = [name for name in services if name in {*APP_SERVICES, "gpu-worker"}]
    declared_volumes = set(config.get("volumes") or {})
    data_sources = {mounts(services[name]).get("/data") for name in app_names}
    assert len(data_sources) == 1, f"/data differs between app services: {data_sources}"
    assert data_sources <= declared_volumes, "/data must be a named volume of the stack"

    postgres_env = environment(services["postgres"])
    for name in app_names:
        service = services[name]
        env = environment(service)
        assert env.get("WINNOW_DATA_DIR") in (None, "/data"), name
        database = urlsplit(env["DATABASE_URL"] or "")
        assert database.scheme.startswith("postgres"), name
        assert (database.hostname, database.port) == ("postgres", 5432), name
        assert database.username == postgres_env["POSTGRES_USER"], name
        assert database.password == postgres_env["POSTGRES_PASSWORD"], name
        assert database.path.lstrip("/") == postgres_env["POSTGRES_DB"], name
        broker = urlsplit(env["REDIS_URL"] or "")
        assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379), name
        assert env.get("WINNOW_SECRET_KEY"), name
        depends = service.get("depends_on") or {}
        for server in ("postgres", "redis"):
            assert depends[server]["condition"] == "service_healthy", (name, server)
        assert command(service)[:1] == [name], name
        assert command(service)[0] in ENTRYPOINT_COMMANDS
    for server in ("postgres", "redis"):
        assert services[server].get("healthcheck", {}).get("test"), server
    assert 8000 in published_targets(services["web"])

    if "gpu" in profiles:
        gpu = services["gpu-worker"]
        assert gpu["profiles"] == ["gpu"]
        assert build_of(gpu) == (ROOT, GPU_DOCKERFILE)
        assert gpu.get("image") != services["web"].get("image")
        devices = gpu["deploy"]["resources"]["reservations"]["devices"]
        assert any(
            device.get("driver") == "nvidia" and "gpu" in device.get("capabilities", [])
            for device in devices
        ), devices


# -- the compose file ---------------------------------------------------------------------


def compose_cli() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on PATH")
    try:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"`docker compose version` failed: {exc}")
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()
        pytest.skip(f"docker compose plugin unavailable: {reason[0] if reason else probe}")
    return [docker, "compose"]


@pytest.mark.parametrize("profiles", PROFILES, ids=["default", "gpu"])
def test_compose_config_as_compose_renders_it(profiles: tuple[str, ...]) -> None:
    cli = compose_cli()
    # COMPOSE_PROFILES / COMPOSE_FILE from the caller's shell would change what is rendered.
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMPOSE_")}
    profile_args = [arg for profile in profiles for arg in ("--profile", profile)]
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), *profile_args, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    check_stack(json.loads(result.stdout), profiles)


@pytest.mark.parametrize("profiles", PROFILES, ids=["default", "gpu"])
def test_compose_file_as_yaml(profiles: tuple[str, ...]) -> None:
    config = yaml.safe_load(COMPOSE_FILE.read_text())
    check_stack(config, profiles)


# -- the entry point ----------------------------------------------------------------------


def module_file(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_entrypoint_commands_exist_in_the_project() -> None:
    # Comments dropped: only what the script runs counts.
    script = re.sub(r"(?m)^\s*#.*$", "", ENTRYPOINT.read_text())
    labels = set(re.findall(r"^([\w|-]+)\)\s*$", script, flags=re.MULTILINE))
    assert labels >= ENTRYPOINT_COMMANDS

    wsgi_modules = re.findall(r"\bexec\s+gunicorn\s+([\w.]+)", script)
    assert wsgi_modules
    for module in wsgi_modules:
        assert "application =" in module_file(module).read_text(), module

    celery_apps = set(re.findall(r"\bcelery\s+-A\s+([\w.]+)", script))
    assert celery_apps
    for app in celery_apps:
        # `celery -A pkg` loads pkg.celery's `app` (or pkg's own).
        candidates = [module_file(f"{app}.celery"), module_file(app)]
        assert any(p.exists() and "app = Celery(" in p.read_text() for p in candidates), app

    assert "manage.py" in script and (ROOT / "manage.py").exists()
    for settings in re.findall(r"DJANGO_SETTINGS_MODULE\W+([\w.]+)", script):
        assert module_file(settings).exists(), settings
    for tool in ("gunicorn", "celery", "django"):
        assert importlib.util.find_spec(tool) is not None, tool


def test_entrypoint_parses_and_execs_other_commands() -> None:
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no sh on PATH")
    syntax = subprocess.run([sh, "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    env = {**os.environ, "WINNOW_APP_DIR": str(ROOT)}
    result = subprocess.run(
        [sh, str(ENTRYPOINT), sys.executable, "-c", "import os; print(os.getcwd())"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == ROOT


def test_collectstatic_needs_no_servers(tmp_path: Path) -> None:
    """The image collects static files at build time, where no database or broker runs."""
    env = {
        **os.environ,
        "WINNOW_DATA_DIR": str(tmp_path),
        "WINNOW_SKIP_EMBEDDED": "1",
        "WINNOW_SECRET_KEY": "collectstatic-only",
        # Sockets that do not exist: any connection attempt would fail the command.
        "DATABASE_URL": f"postgresql://nobody@/none?host={tmp_path / 'no-pg'}",
        "REDIS_URL": f"unix://{tmp_path / 'no-redis.sock'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "admin").is_dir()


# -- the Dockerfiles ----------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def first_index(steps: list[tuple[str, str]], pattern: str) -> int:
    for index, (keyword, args) in enumerate(steps):
        if keyword == "RUN" and re.search(pattern, args):
            return index
    raise AssertionError(f"no RUN step matches {pattern!r}")


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, GPU_DOCKERFILE], ids=["cpu", "gpu"])
def test_dockerfile(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    text = dockerfile.read_text()
    assert "python:3.11-slim" in text

    # torch, pinned, goes in before the project's dependencies can pull another one.
    torch = first_index(steps, r"pip install torch==2\.13\.0\b")
    project = first_index(steps, r"pip install (?:-\S+ )*(?:\.|/build)(?:\s|$)")
    assert torch < project
    if dockerfile == DOCKERFILE:
        assert "--index-url https://download.pytorch.org/whl/cpu" in steps[torch][1]
    else:
        # faiss-gpu in place of faiss-cpu: both wheels provide the `faiss` module.
        uninstall = first_index(steps, r"pip uninstall -y faiss-cpu")
        gpu_faiss = first_index(steps, r"pip install \S*(faiss-gpu|FAISS_GPU_PACKAGE)")
        assert project < uninstall <= gpu_faiss
        assert re.search(r"^ARG FAISS_GPU_PACKAGE=faiss-gpu", text, flags=re.MULTILINE)

    for keyword, args in steps:
        if keyword == "COPY" and "--from=" not in args:
            *sources, _dest = [part for part in args.split() if not part.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"

    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert "WINNOW_DATA_DIR=/data" in text
    assert any(keyword == "VOLUME" and "/data" in args for keyword, args in steps)
    entrypoint = [args for keyword, args in steps if keyword == "ENTRYPOINT"]
    assert entrypoint and "winnow-entrypoint" in entrypoint[-1]
    assert re.search(r"COPY .*docker/entrypoint\.sh \S*winnow-entrypoint", text)
    if dockerfile == DOCKERFILE:
        collect = first_index(steps, r"manage\.py collectstatic")
        assert "WINNOW_SKIP_EMBEDDED=1" in steps[collect][1]
        assert "WINNOW_SECRET_KEY=" in steps[collect][1]

    ignore = Path(f"{dockerfile}.dockerignore")
    patterns = set(ignore.read_text().split())
    assert {".venv", "var", ".git"} <= patterns, ignore
    assert any("__pycache__" in pattern for pattern in patterns), ignore
