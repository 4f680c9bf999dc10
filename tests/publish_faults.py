"""``volforecast train`` (or ``rollback``, ``promote``) that SIGKILLs itself just before the Nth
file-system change of its publish (the commit: set files, renames, links, history append,
archiving; or the switch of a rollback).

``tests/test_fault_injection.py`` drives it through ``PublishRunner``: one server process
(``python -m tests.publish_faults --serve STEPS_FILE FITS_FILE``) imports the package once and
forks a fresh child per run, which arms the kill and runs the real command; the server answers
with the child's exit code (``-9`` when the kill landed). KILL_AT 0 never kills (the run reports
how many steps its publish took in STEPS_FILE). The models are fitted once and memoized in
FITS_FILE, so a killed run costs a fork rather than an interpreter start and a fit; everything
from the data to the last rename is the real command. The server itself never fits or predicts,
so no OpenMP thread pool exists in it when it forks.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

# Every os call that changes the file system during a publish.
STEP_FUNCTIONS = ("mkdir", "rename", "replace", "symlink", "unlink", "rmdir", "write", "ftruncate")


def _arm(kill_at: int, steps_file: Path) -> None:
    from volforecast.store import ModelsDirectory

    state = {"armed": False, "count": 0}

    def wrap(real: Any) -> Any:
        def step(*args: Any, **kwargs: Any) -> Any:
            if state["armed"]:
                state["count"] += 1
                if state["count"] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return step

    for name in STEP_FUNCTIONS:
        setattr(os, name, wrap(getattr(os, name)))

    def armed(real: Any) -> Any:
        def method(self: ModelsDirectory, *args: Any, **kwargs: Any) -> Any:
            state["armed"] = True
            try:
                return real(self, *args, **kwargs)
            finally:
                state["armed"] = False
                steps_file.write_text(str(state["count"]))

        return method

    ModelsDirectory.commit = armed(ModelsDirectory.commit)  # type: ignore[method-assign]
    ModelsDirectory.activate = armed(ModelsDirectory.activate)  # type: ignore[method-assign]


def _memoize_fits(fits_file: Path) -> None:
    from volforecast import training

    cache: dict[Any, Any] = pickle.loads(fits_file.read_bytes()) if fits_file.exists() else {}
    real_fit = training.fit_on_split

    def fit(
        data: Any, returns: Any, split: Any, settings: Any, progress: Any, priors: Any = None
    ) -> Any:
        key = (split.n_train, split.n_evaluate, len(data))
        if key not in cache:
            cache[key] = real_fit(data, returns, split, settings, progress, priors)
            fits_file.write_bytes(pickle.dumps(cache))
        return cache[key]

    training.fit_on_split = fit


def _child(kill_at: int, steps_file: Path, fits_file: Path, command: list[str]) -> int:
    # The child's output would corrupt the server's answers on stdout.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    _memoize_fits(fits_file)
    _arm(kill_at, steps_file)
    from volforecast.cli import main

    return main(command)


def serve(steps_file: Path, fits_file: Path, requests: IO[str], answers: IO[str]) -> int:
    """One JSON request per line (``{"kill_at": N, "command": [...]}``), one exit code back."""
    # Imported here, once, so that each forked run starts with the package loaded.
    import volforecast.cli
    import volforecast.store
    import volforecast.training  # noqa: F401

    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: never returns into the server's loop
            code = 1
            try:
                code = _child(request["kill_at"], steps_file, fits_file, request["command"])
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        answers.write(f"{os.waitstatus_to_exitcode(status)}\n")
        answers.flush()
    return 0


class PublishRunner:
    """A ``serve`` process for a test: ``run(kill_at, *command)`` gives the run's exit code
    (negative: the signal that ended it), as ``subprocess`` would for a separate process."""

    def __init__(
        self, steps_file: Path, fits_file: Path, cwd: Path, env: dict[str, str], bound: float
    ) -> None:
        self.bound = bound  # seconds a run may take before the server is killed as hung
        self._server = subprocess.Popen(
            [sys.executable, "-m", "tests.publish_faults", "--serve", str(steps_file),
             str(fits_file)],
            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def run(self, kill_at: int, *command: str) -> int:
        assert self._server.stdin is not None and self._server.stdout is not None
        self._server.stdin.write(json.dumps({"kill_at": kill_at, "command": command}) + "\n")
        self._server.stdin.flush()
        ready, _, _ = select.select([self._server.stdout], [], [], self.bound)
        if not ready:
            self._server.kill()
            raise RuntimeError(f"a run of {command} took over {self.bound} s: killed as hung")
        answer = self._server.stdout.readline()
        if not answer:
            raise RuntimeError(f"the publish-fault server died (exit {self._server.wait()})")
        return int(answer)

    def close(self) -> None:
        if self._server.stdin is not None:
            self._server.stdin.close()
        self._server.wait()
        if self._server.stdout is not None:
            self._server.stdout.close()


if __name__ == "__main__":
    if sys.argv[1:2] != ["--serve"]:
        sys.exit("usage: python -m tests.publish_faults --serve STEPS_FILE FITS_FILE")
    sys.exit(serve(Path(sys.argv[2]), Path(sys.argv[3]), sys.stdin, sys.stdout))
