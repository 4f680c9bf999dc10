"""Deployment files, checked without Docker: compose, Dockerfiles, crontab, scheduler config."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CRON_FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_train_and_monitor_mount_one_models_volume_at_same_path(compose):
    services = compose["services"]
    mounts = {
        name: dict(v.split(":", 1) for v in services[name]["volumes"])
        for name in ("train", "monitor")
    }
    assert mounts["train"]["models"] == mounts["monitor"]["models"] == "/models"
    assert mounts["train"]["data"] == mounts["monitor"]["data"] == "/data"
    assert {"models", "data"} <= set(compose["volumes"])
    for name in ("train", "monitor"):
        env = services[name]["environment"]
        assert env["VOLF_MODELS_DIR"] == "/models"
        assert services[name]["restart"] == "no"  # one-shot: exits with the CLI's code


def test_compose_scheduler_is_an_optional_profile(compose):
    scheduler = compose["services"]["scheduler"]
    assert scheduler["profiles"] == ["scheduler"]
    assert "models:/models" in scheduler["volumes"]


def test_compose_passes_every_setting_as_volf_variable(compose):
    from volforecast.config import Settings

    env = compose["services"]["train"]["environment"]
    expected = {"VOLF_" + name.upper() for name in Settings.model_fields}
    assert expected == set(env)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_is_valid_for_docker_compose():
    subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], check=True
    )


def _final_entrypoint(dockerfile: Path, target: str) -> list[str]:
    text = dockerfile.read_text()
    stage = text.split(f" AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
    match = re.search(r"^ENTRYPOINT (\[.*\])$", stage, re.MULTILINE)
    assert match, f"no ENTRYPOINT in stage {target} of {dockerfile}"
    return yaml.safe_load(match.group(1))


@pytest.mark.parametrize("service", ["train", "monitor"])
def test_service_image_runs_the_cli_subcommand(compose, service):
    build = compose["services"][service]["build"]
    dockerfile = ROOT / build["dockerfile"]
    text = dockerfile.read_text()
    assert text.startswith("#") and "FROM python:3.11-slim AS base" in text
    assert "python -m venv /opt/venv" in text and "USER volf" in text and "libgomp1" in text
    entry = _final_entrypoint(dockerfile, build["target"])
    assert entry == ["python", f"/app/services/{service}/main.py"]
    main_py = (ROOT / "services" / service / "main.py").read_text()
    assert f'main(["{service}", *sys.argv[1:]])' in main_py


def test_service_entry_point_runs_the_command(monkeypatch, tmp_path):
    import runpy

    seen = []
    monkeypatch.setattr("volforecast.cli.main", lambda argv: seen.append(argv) or 0)
    monkeypatch.setattr("sys.argv", ["main.py", "--source", "sample"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(ROOT / "services" / "monitor" / "main.py"), run_name="__main__")
    assert stop.value.code == 0
    assert seen == [["monitor", "--source", "sample"]]


def test_dockerignore_keeps_data_models_and_tests_out_of_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {"models", "data", "tests", ".git", ".venv"} <= ignored


def _valid_cron_field(field: str, low: int, high: int) -> bool:
    for part in field.split(","):
        m = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        if not m:
            return False
        numbers = [int(x) for x in (m.group(2), m.group(3)) if x is not None]
        if any(not low <= n <= high for n in numbers) or (m.group(4) and int(m.group(4)) == 0):
            return False
    return True


JOB_NAME = r" (train|monitor|report) >>"


def _cron_jobs(text: str) -> list[tuple[list[str], str]]:
    jobs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a cron line: {line}"
        jobs.append((fields[:5], fields[5]))
    return jobs


def test_crontab_lines_parse_and_run_compose_without_tty_and_overlap():
    text = (ROOT / "deploy" / "crontab.example").read_text()
    assert "CRON_TZ=America/New_York" in text
    jobs = _cron_jobs(text)
    assert len(jobs) == 3
    for fields, command in jobs:
        assert all(
            _valid_cron_field(f, lo, hi)
            for f, (lo, hi) in zip(fields, CRON_FIELD_RANGES, strict=True)
        )
        assert "docker compose run --rm -T" in command and "flock -n" in command
    names = {m.group(1) for _, cmd in jobs if (m := re.search(JOB_NAME, cmd))}
    assert names == {"train", "monitor", "report"}


def test_cron_field_validator_rejects_out_of_range_values():
    assert _valid_cron_field("1-5", 0, 7) and _valid_cron_field("*/15", 0, 59)
    assert not _valid_cron_field("61", 0, 59) and not _valid_cron_field("mon", 0, 7)


def test_scheduler_runs_the_same_schedule_as_the_crontab():
    config = yaml.safe_load((ROOT / "services" / "scheduler" / "yacron.yml").read_text())
    assert config["defaults"]["timezone"] == "America/New_York"
    assert config["defaults"]["concurrencyPolicy"] == "Forbid"
    cron = {
        re.search(JOB_NAME, cmd).group(1): " ".join(f)
        for f, cmd in _cron_jobs((ROOT / "deploy" / "crontab.example").read_text())
    }
    jobs = {job["name"]: job for job in config["jobs"]}
    for name in ("train", "monitor", "report"):
        assert jobs[name]["command"] == f"volforecast {name}"
        assert jobs[name]["schedule"] == cron[name]


@pytest.mark.parametrize("service", ["train", "monitor"])
def test_service_image_makes_openmp_threads_wait_passively(service):
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
    assert re.search(r"^\s+OMP_WAIT_POLICY=PASSIVE", dockerfile, re.MULTILINE)
