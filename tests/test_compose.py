"""docker-compose.yml, checked as far as this machine allows without a Docker engine.

Its structure (services, health checks, environment, the migrate step), that every `manage.py`
command it names exists under the environment it gives, that the worker and sweep it starts
really run here against Redis and that their health checks tell a running one from none, and
web's health check against a live server. `docker compose config` runs too when a Compose CLI
is installed (it needs no engine); without one that case is skipped and says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from support import ROOT, stop_process, subprocess_env, wait_until
from support import redis_url  # noqa: F401  (fixture)

COMPOSE = ROOT / "docker-compose.yml"
SITE_SERVICES = ("migrate", "web", "worker", "sweep")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def site_env(compose: dict, service: str = "web") -> dict[str, str]:
    """The service's environment with compose's ${VAR:-default} / ${VAR:?message} filled in."""
    import re

    def fill(value: str) -> str:
        def one(m: re.Match) -> str:
            name, op, rest = m.group(1), m.group(2), m.group(3)
            return {"SECRET_KEY": "compose-check-0123456789abcdefghijklmnopqrstuvwxyzABCD"}.get(
                name, rest if op == ":-" else "")
        return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, str(value))

    return {k: fill(v) for k, v in compose["services"][service]["environment"].items()}


def manage_py_command(service: dict) -> list[str]:
    command = service["command"]
    assert command[:2] == ["python", "manage.py"], command
    return command[2:]


def test_services_health_checks_environment_and_the_migrate_step(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", *SITE_SERVICES}
    for name in ("postgres", "redis", "web", "worker", "sweep"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    for name in ("postgres", "redis"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image  # a chosen version

    for name in SITE_SERVICES:
        service = services[name]
        assert service["build"] == "." and service["image"] == "eid-partner-site"
        env = service["environment"]
        assert env["TASKS_BACKEND"] == "django_tasks_rq.RQBackend"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # no default key: compose refuses to start
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
            assert service["depends_on"]["redis"] == {"condition": "service_healthy"}

    assert manage_py_command(services["migrate"])[:1] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "command" not in services["web"]  # the image's own CMD: the app server
    assert manage_py_command(services["worker"]) == ["rqworker", "--with-scheduler", "default"]
    assert manage_py_command(services["sweep"]) == ["rqcron", "eid.rq_cron"]


def test_every_manage_py_command_it_names_exists_under_its_environment(compose):
    """The production settings with compose's environment (the Redis backend): commands exist,
    and the names they are given (the backend, RQ's classes, the cron module) import."""
    named = {manage_py_command(compose["services"][s])[0] for s in ("migrate", "worker", "sweep")}
    script = (
        "import django, json; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.management import get_commands\n"
        "from django.utils.module_loading import import_string\n"
        "import_string(settings.TASKS['default']['BACKEND'])\n"
        "import_string(settings.RQ['JOB_CLASS']); import_string(settings.RQ['WORKER_CLASS'])\n"
        "import eid.rq_cron\n"
        "print(json.dumps(sorted(get_commands())))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "partner_site.settings", **site_env(compose)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    commands = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert named <= commands, named - commands


def health_check(compose: dict, service: str, redis: str) -> int:
    test = compose["services"][service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    return subprocess.run([sys.executable, "-c", test[3]], env=subprocess_env(REDIS_URL=redis),
                          capture_output=True, timeout=30).returncode


@pytest.mark.parametrize("service", ["worker", "sweep"])
def test_the_worker_and_the_sweep_run_as_compose_starts_them_and_their_health_checks_see_them(
    compose, service, redis_url  # noqa: F811
):
    assert health_check(compose, service, redis_url) != 0  # nothing running yet
    env = subprocess_env(TASKS_BACKEND="django_tasks_rq.RQBackend", REDIS_URL=redis_url)
    proc = subprocess.Popen([sys.executable, "manage.py", *manage_py_command(compose["services"][service])],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until(lambda: health_check(compose, service, redis_url) == 0, timeout=30, interval=0.5,
                   message=f"{service}'s health check to pass")
        assert proc.poll() is None
    finally:
        stop_process(proc)
    assert health_check(compose, service, redis_url) != 0  # gone: it deregistered


@pytest.mark.django_db
def test_webs_health_check_passes_against_the_site(compose, live_server):
    test = compose["services"]["web"]["healthcheck"]["test"]
    code = test[3]
    assert "http://127.0.0.1:8000/accounts/login/" in code
    code = code.replace("http://127.0.0.1:8000", live_server.url)
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_it(tmp_path):
    """Compose's own validation (schema, interpolation); it reads the file and needs no engine."""
    cli = compose_cli()
    if cli is None:
        pytest.skip("no Compose CLI here (neither `docker compose` nor `docker-compose`): "
                    "the file was checked by the other tests only")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path)}
    refused = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode != 0 and "SECRET_KEY" in refused.stdout + refused.stderr
    done = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], env={**env, "SECRET_KEY": "k" * 50},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
