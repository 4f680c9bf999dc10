from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from volforecast.runtime import (
    Stopped,
    available_cpus,
    fit_threads,
    prefer_passive_waiting,
    signals_deferred,
    stop_on_signals,
)
from volforecast.selection import make_ensemble

from .conftest import cli_args, snapshot

AFFINITY = len(os.sched_getaffinity(0))


def _cgroup(tmp_path: Path, v2: str | None = None, v1: tuple[str, str] | None = None) -> dict:
    paths = {
        "cpu_max": tmp_path / "cpu.max",
        "quota": tmp_path / "cpu.cfs_quota_us",
        "period": tmp_path / "cpu.cfs_period_us",
    }
    if v2 is not None:
        paths["cpu_max"].write_text(v2)
    if v1 is not None:
        paths["quota"].write_text(v1[0])
        paths["period"].write_text(v1[1])
    return paths


def test_available_cpus_is_the_affinity_mask_when_no_cgroup_quota(tmp_path: Path):
    assert available_cpus(**_cgroup(tmp_path)) == AFFINITY
    assert available_cpus(**_cgroup(tmp_path, v2="max 100000\n")) == AFFINITY
    assert available_cpus(**_cgroup(tmp_path, v1=("-1", "100000"))) == AFFINITY


def test_available_cpus_rounds_a_cgroup_v2_quota_up_and_never_exceeds_affinity(tmp_path: Path):
    assert available_cpus(**_cgroup(tmp_path, v2="50000 100000\n")) == 1  # --cpus 0.5
    assert available_cpus(**_cgroup(tmp_path, v2="150000 100000\n")) == min(AFFINITY, 2)
    assert available_cpus(**_cgroup(tmp_path, v2="6400000 100000\n")) == AFFINITY


def test_available_cpus_reads_a_cgroup_v1_quota(tmp_path: Path):
    assert available_cpus(**_cgroup(tmp_path, v1=("100000", "100000"))) == 1


def test_available_cpus_follows_the_affinity_mask_when_it_is_narrowed(tmp_path: Path):
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        assert available_cpus(**_cgroup(tmp_path)) == 1
    finally:
        os.sched_setaffinity(0, before)


def test_fit_threads_is_the_setting_when_given_else_available_cpus():
    assert fit_threads(3) == 3
    assert fit_threads(0) == available_cpus()


def test_make_ensemble_passes_threads_to_both_learners(make_settings):
    ensemble = make_ensemble(make_settings(threads=1))
    xgb, lgbm = ensemble._base_learners()
    assert ensemble.n_jobs == 1
    assert xgb.booster.get_params()["n_jobs"] == 1
    assert lgbm.booster.get_params()["n_jobs"] == 1


def test_make_ensemble_fits_with_one_thread_when_threads_is_not_set(make_settings):
    # Measured: on daily data a second OpenMP thread slows a fit (README, "On a busy host").
    ensemble = make_ensemble(make_settings())
    assert ensemble.n_jobs == 1
    assert make_ensemble(make_settings(threads=0)).n_jobs == available_cpus()


def test_prefer_passive_waiting_sets_passive_unless_the_user_chose():
    env: dict[str, str] = {}
    prefer_passive_waiting(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    chosen = {"OMP_WAIT_POLICY": "ACTIVE"}
    prefer_passive_waiting(chosen)
    assert chosen == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_sigterm_inside_deferred_block_stops_only_after_the_block_finishes():
    finished = []
    with pytest.raises(Stopped) as stopped, stop_on_signals():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            finished.append("commit")
        finished.append("after")
    assert finished == ["commit"]
    assert stopped.value.exit_code == 143


def test_stop_on_signals_restores_previous_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


# A train whose fit announces itself and then takes as long as needed: the signal then always
# lands mid-run, however slow or fast the machine is.
SLOW_TRAIN = """
import sys, time
from volforecast import training
def fit(*args, **kwargs):
    print("FITTING", file=sys.stderr, flush=True)
    time.sleep(600)
training.fit_on_split = fit
from volforecast.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_train_exits_143_with_a_log_line_and_unchanged_directory_on_sigterm(project: Path):
    before = snapshot(project / "models")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_TRAIN, *cli_args(project, "train")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("FITTING"):
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=600)[1]
    assert proc.returncode == 143
    assert "stopped by SIGTERM" in "".join(lines) + rest
    assert snapshot(project / "models") == before


def test_sigterm_stops_the_run_when_it_lands_while_a_log_line_is_being_written():
    import logging
    import threading
    import time

    # logging's emit catches Exception (and prints a logging error): a stop that were one
    # would be swallowed there, and the run would carry on.
    log = logging.getLogger("volforecast.test_sigterm")
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - closed below
    log.addHandler(handler)
    log.propagate = False
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    try:
        with pytest.raises(Stopped), stop_on_signals():
            timer.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                log.warning("progress line %s", "x" * 200)
    finally:
        timer.cancel()
        log.removeHandler(handler)
        handler.stream.close()
