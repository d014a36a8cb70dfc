"""The walls: import contracts, types, and `eid` as a wheel that installs and runs on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from support import ROOT

BIN = Path(sys.executable).parent


def _run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 600):
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("config", [".importlinter", "tests/second_site/.importlinter"])
def test_import_contracts_hold(config):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    done = _run(BIN / "lint-imports", "--config", config, "--no-cache", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_mypy_finds_no_errors_in_eid_and_the_site():
    done = _run(BIN / "mypy", "eid", "partner_site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout


def test_the_wheel_installs_alone_and_a_site_using_it_passes_check(tmp_path):
    wheels = tmp_path / "dist"
    built = _run(sys.executable, "-m", "build", "--wheel", "--outdir", wheels, ROOT)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = wheels.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "eid/content.py" in names and "eid/templates/eid/button.html" in names and "eid/static/eid/eid.js" in names
    assert "eid/webhooks/templates/eid_webhooks/admin/secret_once.html" in names  # a subpackage's templates too
    # eid.jobs, an optional app of the same wheel: its templates, static files, migrations and command.
    assert {"eid/jobs/templates/eid_jobs/panel.html", "eid/jobs/templates/eid_jobs/status.html",
            "eid/jobs/templates/eid_jobs/admin/start_batch.html", "eid/jobs/static/eid_jobs/auto_edit.js",
            "eid/jobs/static/eid_jobs/auto_edit.css", "eid/jobs/migrations/0001_initial.py",
            "eid/jobs/management/commands/descript.py"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("partner_site", "sandbox", "demo", "bench", "tests")]

    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv).returncode == 0
    installed = _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, timeout=900)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    # A site of one settings module and one adapter, in a folder with nothing of this repository.
    site = tmp_path / "site"
    site.mkdir()
    (site / "tinyadapter.py").write_text(textwrap.dedent('''
        from eid.content import ContentAdapter, StoredEdit

        class NothingYet(ContentAdapter):
            def load_item(self, user, ref): return None
            def content_for(self, item, option): return None
            def find_source(self, user, source_id): return None
            def store_edit(self, edit): return StoredEdit(ref="", title="")
    '''))
    (site / "tinyurls.py").write_text(textwrap.dedent('''
        from django.urls import include, path
        urlpatterns = [path("descript/", include("eid.urls")), path("", include("eid.jobs.urls"))]
    '''))
    (site / "tinysite.py").write_text(textwrap.dedent('''
        SECRET_KEY = "tiny-site-check-only-0123456789abcdefghijklmnopqrstuvwxyz"
        INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.staticfiles",
                          "django_tasks", "eid", "eid.jobs"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
        ROOT_URLCONF = "tinyurls"
        TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
        TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
        STATIC_URL = "static/"
        EID_CONTENT_ADAPTER = "tinyadapter.NothingYet"
        AWS_STORAGE_BUCKET_NAME = "media"
    '''))
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tinysite", "PYTHONPATH": str(site)}
    where = _run(venv / "bin" / "python", "-c", "import eid, django; print(eid.__file__)", cwd=site, env=env)
    assert where.returncode == 0 and str(venv) in where.stdout, where.stdout + where.stderr
    checked = _run(venv / "bin" / "python", "-m", "django", "check", cwd=site, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # eid's own checks ran, and say what is missing: the connection to Descript.
    assert "eid.W001" in checked.stderr + checked.stdout
    migrated = _run(venv / "bin" / "python", "-m", "django", "migrate", "--no-input", cwd=site, env=env)
    assert migrated.returncode == 0 and "Applying eid.0001_initial" in migrated.stdout, migrated.stderr
    assert "Applying eid_jobs.0001_initial" in migrated.stdout

    # eid.jobs from the installed wheel alone: its pages' templates load, its script is found, its command runs.
    loaded = _run(venv / "bin" / "python", "-m", "django", "shell", "-c", (
        "from django.template.loader import get_template; from django.urls import reverse\n"
        "for name in ('eid_jobs/panel.html', 'eid_jobs/status.html', 'eid_jobs/batch.html'):\n"
        "    print(get_template(name).origin.name)\n"
        "print(reverse('eid_jobs:callback', args=['t']))"), cwd=site, env=env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert loaded.stdout.count(str(venv)) == 3 and "/descript/jobs/callback/t" in loaded.stdout
    found = _run(venv / "bin" / "python", "-m", "django", "findstatic", "eid_jobs/auto_edit.js", cwd=site, env=env)
    assert found.returncode == 0 and str(venv) in found.stdout, found.stdout + found.stderr
    helped = _run(venv / "bin" / "python", "-m", "django", "descript", "--help", cwd=site, env=env)
    assert helped.returncode == 0, helped.stdout + helped.stderr
    assert all(word in helped.stdout for word in ("import", "agent", "publish", "jobs", "batch"))
