"""``volforecast train`` (or ``rollback``, ``promote``) that SIGKILLs itself just before the Nth
file-system change of its publish (the commit: set files, renames, links, history append,
archiving; or the switch of a rollback).

Run by ``tests/test_fault_injection.py`` as
``python -m tests.publish_faults KILL_AT STEPS_FILE FITS_FILE COMMAND <arguments>``:
KILL_AT 0 never kills (the run reports how many steps its publish took in STEPS_FILE). The
models are fitted once and memoized in FITS_FILE, so each killed run costs a process start
rather than a fit; everything from the data to the last rename is the real train command.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any

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


def run(argv: list[str]) -> int:
    kill_at, steps_file, fits_file, *command = argv
    _memoize_fits(Path(fits_file))
    _arm(int(kill_at), Path(steps_file))
    from volforecast.cli import main

    return main(command)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
