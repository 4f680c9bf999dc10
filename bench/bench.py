"""Wall time and peak memory of `volforecast train`, `monitor` and `evaluate` on real data.

A benchmark, not a test: it prints numbers for the README and asserts nothing. Each command runs
in its own process (as cron runs it) and its peak resident memory is read from that process's
own rusage.

    python bench/bench.py --data-dir ../shared/data            # train, monitor, evaluate
    python bench/bench.py --data-dir ../shared/data --skip-evaluate
    python bench/bench.py --data-dir ../shared/data --contention 3 --repeat 3

``--contention N`` measures train idle and beside N busy processes (pure-Python spin loops,
as a crowded cron host has), alternating so that both see the same machine, with OpenMP's
passive waiting (volforecast's default) and with spin-waiting (OpenMP's own default) for
comparison. It prints each run and the ratio of median contended to median idle wall time.

``--universe`` measures the Dask engine: the universe evaluate (SPY, QQQ, TLT, GLD at h=5) on
1 worker and on every CPU, side by side, checks that their forecasts are bit-identical and
prints the speedup; then how wall time grows with the number of symbols (1, 2, 4, 7).

    python bench/bench.py --data-dir ../shared/data --universe

``--against REF`` measures this checkout against an earlier release side by side: the git
revision REF is exported to a temporary folder, and train and evaluate run alternately with
each version's code (``python -m volforecast.cli`` with that version first on PYTHONPATH, the
same interpreter and packages), ``--repeat`` times each; it prints the medians and the ratio.

    python bench/bench.py --data-dir ../shared/data --against 37f08cd --repeat 3

``--cost-growth DIR`` measures a stock universe end to end (DIR holds ``symbols.txt`` and the
csv files, e.g. ``../shared/data/universe``): for the first 10, 50 and every symbol of
``symbols.txt`` (``--sizes``) and 1 and 2 workers (``--workers-list``), ``train``, ``monitor``
and ``evaluate`` (h = 5 from ``--eval-start``, only up to ``--evaluate-max`` symbols: the full
universe's evaluate is an hour on one worker), and ``predict`` once per size (it runs
in-process). It prints wall time, seconds per symbol and peak resident memory of the command's
process (its Dask workers are separate processes, each smaller).

    python bench/bench.py --data-dir ../shared/data --cost-growth ../shared/data/universe

``--fit-costs`` times one ensemble fit of each tree strength of ``volforecast.selection``
(SPY 2010-2025 at h = 5, one thread, the strengths alternating, ``--repeat`` rounds) and prints
each median relative to "light": the costs the selection rule reads.

    python bench/bench.py --data-dir ../shared/data --fit-costs --repeat 5

``--threads A,B`` times train with ``--threads A`` and ``--threads B`` (0 = every CPU the
process may use), alternating, ``--repeat`` times each, idle and (with ``--contention N``)
beside N busy processes; it checks that both give the same validation and test scores and
prints each median and the ratio.

    python bench/bench.py --data-dir ../shared/data --threads 1,0 --repeat 5 --contention 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit code) of one child process."""
    started = time.monotonic()
    # The child's log goes to a file: a pipe read only at the end would fill up (64 KiB) and
    # block a chatty child for ever.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
    # Linux reports ru_maxrss in KiB.
    return wall, usage.ru_maxrss / 1024.0, proc.returncode


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@contextlib.contextmanager
def _busy(n: int) -> Iterator[None]:
    """``n`` processes that each keep one CPU busy until the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5)  # let them get going
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def contention(exe: str, common: list[str], env: dict[str, str], n: int, repeat: int) -> int:
    print(f"train beside {n} busy processes vs idle, {repeat} alternating run(s) each")
    print(f"{'OpenMP wait':<13}{'load':<8}{'wall s':>10}{'exit':>6}")
    walls: dict[tuple[str, str], list[float]] = {}
    failed = 0
    for _ in range(repeat):
        for policy in ("PASSIVE", "ACTIVE"):
            for load in ("idle", f"{n} busy"):
                run_env = {**env, "OMP_WAIT_POLICY": policy}
                with _busy(n if load != "idle" else 0):
                    wall, _, code = _run([exe, "train", *common], run_env)
                failed |= code != 0
                walls.setdefault((policy, load), []).append(wall)
                print(f"{policy:<13}{load:<8}{wall:>10.1f}{code:>6}", flush=True)
    for policy in ("PASSIVE", "ACTIVE"):
        idle = statistics.median(walls[(policy, "idle")])
        busy = statistics.median(walls[(policy, f"{n} busy")])
        note = " (default)" if policy == "PASSIVE" else " (OpenMP's own default)"
        print(f"{policy}{note}: median idle {idle:.1f} s, beside {n} busy {busy:.1f} s, "
              f"ratio {busy / idle:.2f}x")  # fmt: skip
    return 1 if failed else 0


UNIVERSE = ["SPY", "QQQ", "TLT", "GLD", "EWJ", "IYR", "VTI"]


def universe(exe: str, data_dir: str, env: dict[str, str], work: Path, eval_start: str) -> int:
    four = UNIVERSE[:4]
    cpus = len(os.sched_getaffinity(0))
    base = [exe, "evaluate", "--source", "csv", "--data-dir", data_dir, "--horizons", "5",
            "--eval-start", eval_start]  # fmt: skip
    print(f"evaluate --symbols {','.join(four)} --horizons 5 --eval-start {eval_start}")
    print(f"{'workers':<10}{'wall s':>10}{'exit':>6}")
    walls = {}
    failed = 0
    for workers in (1, cpus):
        out = work / f"w{workers}"
        cmd = [*base, "--symbols", ",".join(four), "--workers", str(workers), "--output", str(out)]
        wall, _, code = _run(cmd, env)
        failed |= code != 0
        walls[workers] = wall
        print(f"{workers:<10}{wall:>10.1f}{code:>6}", flush=True)
    same = all(
        (work / "w1" / s / "h5" / "forecasts.csv").read_bytes()
        == (work / f"w{cpus}" / s / "h5" / "forecasts.csv").read_bytes()
        for s in four
    ) if not failed else False  # fmt: skip
    print(f"speedup {cpus} workers vs 1: {walls[1] / walls[cpus]:.2f}x; forecasts "
          f"{'bit-identical' if same else 'DIFFER'}")  # fmt: skip
    print(f"\nwall time by number of symbols ({cpus} workers)")
    print(f"{'symbols':<10}{'wall s':>10}{'s/symbol':>10}{'exit':>6}")
    for n in (1, 2, 4, 7):
        symbols = UNIVERSE[:n]
        cmd = [*base, "--symbols", ",".join(symbols), "--output", str(work / f"n{n}")]
        wall, _, code = _run(cmd, env)
        failed |= code != 0
        print(f"{n:<10}{wall:>10.1f}{wall / n:>10.1f}{code:>6}", flush=True)
    return 1 if failed or not same else 0


def cost_growth(exe: str, universe_dir: Path, env: dict[str, str], work: Path,
                sizes: list[int], workers_list: list[int], eval_start: str,
                evaluate_max: int) -> int:  # fmt: skip
    lines = (universe_dir / "symbols.txt").read_text().splitlines()
    symbols = [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]
    print(f"{'command':<10}{'symbols':>8}{'workers':>8}{'wall s':>10}{'s/symbol':>10}"
          f"{'peak MiB':>10}{'exit':>6}")  # fmt: skip
    failed = 0
    for n in sizes:
        chosen = symbols[:n]
        file = work / f"symbols{n}.txt"
        file.write_text("\n".join(chosen) + "\n")
        base = ["--source", "csv", "--data-dir", str(universe_dir), "--universe-file", str(file)]
        for workers in workers_list:
            models = ["--models-dir", str(work / f"m{n}w{workers}")]
            jobs = [("train", [exe, "train", *base, *models]),
                    ("monitor", [exe, "monitor", *base, *models])]  # fmt: skip
            if workers == workers_list[0]:
                jobs.append(("predict", [exe, "predict", *base, *models]))
            if len(chosen) <= evaluate_max:
                out = work / f"e{n}w{workers}"
                jobs.append(("evaluate", [exe, "evaluate", *base, "--horizons", "5",
                                          "--eval-start", eval_start, "--output", str(out)]))  # fmt: skip
            for name, cmd in jobs:
                w = [] if name == "predict" else ["--workers", str(workers)]
                wall, peak, code = _run([*cmd, *w], env)
                # predict and monitor exit non-zero to report advice (exit codes in the README)
                failed |= code not in (0, 10, 11)
                shown = "-" if name == "predict" else str(workers)
                print(f"{name:<10}{len(chosen):>8}{shown:>8}{wall:>10.1f}{wall / len(chosen):>10.2f}"
                      f"{peak:>10.0f}{code:>6}", flush=True)  # fmt: skip
    return 1 if failed else 0


def against(ref: str, common: list[str], env: dict[str, str], work: Path, repeat: int,
            skip_evaluate: bool) -> int:  # fmt: skip
    """Train, monitor (and evaluate) of this checkout and of git revision ``ref``, alternating.
    Each version trains and monitors its own models directory, so monitor reads a set its own
    train wrote."""
    repo = Path(__file__).resolve().parents[1]
    old = work / "previous"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "services"],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    versions = {"this": repo / "services", ref: old / "services"}
    commands = [("train", ["train"]), ("monitor", ["monitor"])]
    if not skip_evaluate:
        commands.append(("evaluate", ["evaluate", "--output", str(work / "e")]))
    at = common.index("--models-dir") + 1
    own = {
        v: [*common[:at], str(work / f"m{i}"), *common[at + 1 :]] for i, v in enumerate(versions)
    }
    print(f"{'command':<10}{'version':>10}{'wall s':>10}{'peak MiB':>12}{'exit':>6}")
    failed = 0
    medians: dict[tuple[str, str], float] = {}
    for name, args in commands:
        walls: dict[str, list[float]] = {v: [] for v in versions}
        for _ in range(repeat):
            for version, path in versions.items():
                cmd = [sys.executable, "-m", "volforecast.cli", *args, *own[version]]
                wall, peak, code = _run(cmd, {**env, "PYTHONPATH": str(path)})
                # monitor exits 10 or 11 to report advice (exit codes in the README)
                failed |= code not in ((0, 10, 11) if name == "monitor" else (0,))
                walls[version].append(wall)
                print(f"{name:<10}{version:>10}{wall:>10.1f}{peak:>12.0f}{code:>6}", flush=True)
        for version in versions:
            medians[(name, version)] = statistics.median(walls[version])
    for name, _ in commands:
        this, prev = medians[(name, "this")], medians[(name, ref)]
        print(f"{name}: median {this:.1f} s (this) vs {prev:.1f} s ({ref}): {this / prev:.2f}x")
    return 1 if failed else 0


def _scores(models_dir: Path) -> tuple[float, ...]:
    dual = json.loads((models_dir / "dual_model_baseline.json").read_text())
    return (dual["model_a"]["validation_rmse"], dual["model_b"]["test_rmse"])


def thread_counts(exe: str, common: list[str], env: dict[str, str], work: Path,
                  counts: list[int], repeat: int, busy: int) -> int:  # fmt: skip
    """Train with each ``--threads`` count, alternating; idle, and beside ``busy`` processes."""
    loads = [0, busy] if busy else [0]
    print(f"{'threads':<10}{'load':<10}{'wall s':>10}{'exit':>6}")
    walls: dict[tuple[int, int], list[float]] = {}
    scores: dict[int, set[tuple[float, ...]]] = {c: set() for c in counts}
    failed = 0
    for _ in range(repeat):
        for load in loads:
            for count in counts:
                models = work / f"t{count}"
                # The last --models-dir given wins: each count keeps its own set.
                cmd = [exe, "train", *common, "--models-dir", str(models), "--threads", str(count)]
                with _busy(load):
                    wall, _, code = _run(cmd, env)
                failed |= code != 0
                if code == 0:
                    scores[count].add(_scores(models))
                walls.setdefault((count, load), []).append(wall)
                label = "idle" if not load else f"{load} busy"
                print(f"{count:<10}{label:<10}{wall:>10.1f}{code:>6}", flush=True)
    same = len(set().union(*scores.values())) == 1
    print(f"validation/test RMSE {'identical' if same else 'DIFFER'} across thread counts")
    first = counts[0]
    for load in loads:
        label = "idle" if not load else f"beside {load} busy"
        cells = ", ".join(f"--threads {c}: {statistics.median(walls[(c, load)]):.1f} s"
                          for c in counts)  # fmt: skip
        ratios = ", ".join(
            f"{c} / {first}: {statistics.median(walls[(c, load)]) / statistics.median(walls[(first, load)]):.2f}x"
            for c in counts[1:]
        )  # fmt: skip
        print(f"{label}: median {cells}; {ratios}")
    return 1 if failed or not same else 0


def fit_costs(data_dir: str, repeat: int) -> int:
    """Median fit time of each tree strength, relative to the cheapest ("light")."""
    from volforecast import selection
    from volforecast.config import DataSource, Settings
    from volforecast.data import load_market_data
    from volforecast.ensemble import StackedEnsemble
    from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled

    settings = Settings(data_source=DataSource.CSV, data_dir=Path(data_dir))
    data = labeled(build_dataset(load_market_data(settings).frame, 5))
    X, y = data.loc[:, list(FEATURE_COLUMNS)], data[TARGET]
    # One candidate per tree strength, on the default core.
    specs = [c for c in selection.CANDIDATES if c.name.startswith("range_vix_rel+")][:3]
    times: dict[str, list[float]] = {c.name: [] for c in specs}
    for _ in range(repeat):
        for spec in specs:
            model = StackedEnsemble(horizon=5, n_jobs=1, **selection.ensemble_kwargs(spec))
            started = time.perf_counter()
            model.fit(X, y)
            times[spec.name].append(time.perf_counter() - started)
    light = statistics.median(times[specs[0].name])
    print(f"{'candidate':<28}{'median s':>10}{'relative':>10}{'declared':>10}")
    for spec in specs:
        median = statistics.median(times[spec.name])
        print(f"{spec.name:<28}{median:>10.2f}{median / light:>10.2f}{spec.cost:>10.1f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", required=True, help="folder with spy_daily.csv, vix_daily.csv"
    )
    parser.add_argument("--skip-evaluate", action="store_true", help="only train and monitor")
    parser.add_argument("--repeat", type=int, default=1, help="runs of train and monitor")
    parser.add_argument(
        "--contention",
        type=int,
        metavar="N",
        default=0,
        help="time train idle vs beside N busy processes (and nothing else)",
    )
    parser.add_argument(
        "--universe",
        action="store_true",
        help="the Dask engine: universe evaluate on 1 vs all workers, and growth with symbols",
    )
    parser.add_argument(
        "--eval-start",
        default=None,
        help="first day forecast (--universe: 2013-01-01, --cost-growth: 2020-01-01)",
    )
    parser.add_argument(
        "--cost-growth",
        metavar="DIR",
        type=Path,
        help="a stock universe (DIR/symbols.txt and its csv files) end to end, by size and workers",
    )
    parser.add_argument("--sizes", default="10,50,0", help="--cost-growth: symbols (0 = all)")
    parser.add_argument("--workers-list", default="1,2", help="--cost-growth: worker counts")
    parser.add_argument(
        "--evaluate-max", type=int, default=50, help="--cost-growth: evaluate up to N symbols"
    )
    parser.add_argument(
        "--fit-costs",
        action="store_true",
        help="fit time of each tree strength of the selection, relative to the cheapest",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="train, monitor and evaluate of this checkout vs git revision REF, side by side",
    )
    parser.add_argument(
        "--threads",
        metavar="A,B",
        help="train with --threads A vs B (0 = all CPUs), alternating; with --contention N also "
        "beside N busy processes",
    )
    args = parser.parse_args()

    exe = shutil.which("volforecast") or str(Path(sys.executable).with_name("volforecast"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}
    work = Path(tempfile.mkdtemp(prefix="volf-bench-"))
    common = ["--source", "csv", "--data-dir", args.data_dir, "--models-dir", str(work / "m")]
    print(f"machine: {os.cpu_count()} CPUs ({_cpu()}), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")  # fmt: skip
    if args.universe:
        code = universe(exe, args.data_dir, env, work, args.eval_start or "2013-01-01")
        shutil.rmtree(work, ignore_errors=True)
        return code
    if args.cost_growth:
        n_all = len([ln for ln in (args.cost_growth / "symbols.txt").read_text().splitlines()
                     if ln.split("#")[0].strip()])  # fmt: skip
        sizes = [int(k) or n_all for k in args.sizes.split(",")]
        workers_list = [int(k) for k in args.workers_list.split(",")]
        code = cost_growth(exe, args.cost_growth, env, work, sizes, workers_list,
                           args.eval_start or "2020-01-01",
                           args.evaluate_max)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
        return code
    if args.threads:
        counts = [int(c) for c in args.threads.split(",")]
        code = thread_counts(exe, common, env, work, counts, args.repeat, args.contention)
        shutil.rmtree(work, ignore_errors=True)
        return code
    if args.fit_costs:
        return fit_costs(args.data_dir, args.repeat)
    if args.against:
        code = against(args.against, common, env, work, args.repeat, args.skip_evaluate)
        shutil.rmtree(work, ignore_errors=True)
        return code
    if args.contention:
        code = contention(exe, common, env, args.contention, args.repeat)
        shutil.rmtree(work, ignore_errors=True)
        return code
    jobs = [("train", [exe, "train", *common])] * args.repeat
    jobs += [("monitor", [exe, "monitor", *common])] * args.repeat
    if not args.skip_evaluate:
        jobs.append(("evaluate", [exe, "evaluate", *common, "--output", str(work / "e")]))
    print(f"{'command':<10}{'wall s':>10}{'peak MiB':>12}{'exit':>6}")
    failed = 0
    for name, cmd in jobs:
        wall, peak, code = _run(cmd, env)
        failed |= code != 0
        print(f"{name:<10}{wall:>10.1f}{peak:>12.0f}{code:>6}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
