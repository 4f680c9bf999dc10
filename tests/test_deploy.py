"""Deployment files, checked without Docker: compose, Dockerfiles, crontab, scheduler config."""

from __future__ import annotations

import os
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


def test_compose_cluster_profile_runs_dask_from_the_one_image_with_the_models_volume(compose):
    services = compose["services"]
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert scheduler["profiles"] == worker["profiles"] == ["cluster"]
    assert scheduler["image"] == worker["image"] == services["train"]["image"]
    assert scheduler["entrypoint"][:2] == ["dask", "scheduler"]
    assert worker["entrypoint"][:3] == [
        "dask", "worker", "${VOLF_DASK_SCHEDULER:-tcp://dask-scheduler:8786}"
    ]  # fmt: skip
    # Workers write the symbols' sets: the same volume at the same path as train.
    assert "models:/models" in worker["volumes"]


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


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_csv_override_merges_into_a_csv_source_on_its_own_mount(tmp_path):
    files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.csv.yml")]
    merged = subprocess.run(
        ["docker-compose", *files, "config"],
        env={**os.environ, "VOLF_CSV_DIR": str(tmp_path)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    monitor = yaml.safe_load(merged)["services"]["monitor"]
    assert monitor["environment"]["VOLF_DATA_SOURCE"] == "csv"
    assert monitor["environment"]["VOLF_DATA_DIR"] == "/csv"
    targets = sorted(str(v).split(":")[1] if isinstance(v, str) else v["target"]
                     for v in monitor["volumes"])  # fmt: skip
    assert targets == ["/csv", "/data", "/models"]


DOCKERFILE = ROOT / "services" / "Dockerfile"


def test_every_service_runs_the_one_image_with_its_own_entry_point(compose):
    services = compose["services"]
    for name in ("train", "monitor", "scheduler"):
        assert services[name]["build"] == {"context": ".", "dockerfile": "services/Dockerfile"}
        assert services[name]["image"] == "volforecast:latest"
    for name in ("train", "monitor"):
        assert services[name]["entrypoint"] == ["python", f"/app/services/{name}/main.py"]
        main_py = (ROOT / "services" / name / "main.py").read_text()
        assert f'main(["{name}", *sys.argv[1:]])' in main_py
    assert services["scheduler"]["entrypoint"] == ["/app/services/scheduler/entrypoint.sh"]


def test_image_is_multi_stage_with_only_runtime_trees_in_the_final_stage():
    text = DOCKERFILE.read_text()
    build, final = text.split("\nFROM python:3.11-slim\n")
    assert "FROM python:3.11-slim AS build" in build and "pip install" in build
    assert "-name tests" in build and "uninstall" in build  # pruned before the copy
    assert "pip install" not in final  # the final stage installs nothing from PyPI
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert "USER volf" in final and "libgomp1" in final
    assert re.search(r"^\s+OMP_WAIT_POLICY=PASSIVE", final, re.MULTILINE)
    assert 'ENTRYPOINT ["volforecast"]' in final


def test_csv_override_mounts_the_folder_apart_from_the_data_volume():
    override = yaml.safe_load((ROOT / "docker-compose.csv.yml").read_text())
    for name in ("train", "monitor", "scheduler"):
        service = override["services"][name]
        assert service["environment"] == {"VOLF_DATA_SOURCE": "csv", "VOLF_DATA_DIR": "/csv"}
        [mount] = service["volumes"]
        assert mount.endswith(":/csv:ro")  # never over /data, where the named volume is


def test_scheduler_entry_point_lists_its_jobs_before_starting_yacron(tmp_path):
    done = subprocess.run(
        ["sh", str(ROOT / "services" / "scheduler" / "entrypoint.sh")],
        env={"PATH": "/usr/bin:/bin", "VOLF_YACRON": "echo",
             "VOLF_SCHEDULER_CONFIG": str(ROOT / "services" / "scheduler" / "yacron.yml")},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].startswith("volforecast scheduler starting")
    assert lines[1:4] == ['  train: "0 6 * * 0"', '  monitor: "30 18 * * 1-5"',
                          '  report: "45 18 * * 1-5"']  # fmt: skip
    assert lines[4].startswith("-c ")  # then it hands over to yacron


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
        assert "$COMPOSE run --rm -T" in command and "flock -n" in command
    names = {m.group(1) for _, cmd in jobs if (m := re.search(JOB_NAME, cmd))}
    assert names == {"train", "monitor", "report"}
    # One line works with compose v1 and v2: the command is a variable set in the file.
    assert re.search(r"^COMPOSE=docker-compose$", text, re.MULTILINE)


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
