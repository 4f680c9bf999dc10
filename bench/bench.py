"""Wall time and peak memory of `volforecast train`, `monitor` and `evaluate` on real data.

A benchmark, not a test: it prints numbers for the README and asserts nothing. Each command runs
in its own process (as cron runs it) and its peak resident memory is read from that process's
own rusage.

    python bench/bench.py --data-dir ../shared/data            # train, monitor, evaluate
    python bench/bench.py --data-dir ../shared/data --skip-evaluate
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit code) of one child process."""
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(err)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", required=True, help="folder with spy_daily.csv, vix_daily.csv"
    )
    parser.add_argument("--skip-evaluate", action="store_true", help="only train and monitor")
    parser.add_argument("--repeat", type=int, default=1, help="runs of train and monitor")
    args = parser.parse_args()

    exe = shutil.which("volforecast") or str(Path(sys.executable).with_name("volforecast"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLF_")}
    work = Path(tempfile.mkdtemp(prefix="volf-bench-"))
    common = ["--source", "csv", "--data-dir", args.data_dir, "--models-dir", str(work / "m")]
    jobs = [("train", [exe, "train", *common])] * args.repeat
    jobs += [("monitor", [exe, "monitor", *common])] * args.repeat
    if not args.skip_evaluate:
        jobs.append(("evaluate", [exe, "evaluate", *common, "--output", str(work / "e")]))
    print(f"machine: {os.cpu_count()} CPUs ({_cpu()}), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")  # fmt: skip
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
