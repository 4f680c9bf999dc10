"""Promote and roll back: make a kept model set live again, under the models-directory lock,
verified, and logged in ``deployments.jsonl`` (``volforecast.store`` does the switch).

``volforecast rollback`` puts back the set that was live before the current one (or ``--to`` a
given run id); ``volforecast promote RUN_ID`` makes any archived set live. Either is a switch
of the ``current`` link like a train's commit, so monitor and predict follow at once.
"""

from __future__ import annotations

from typing import Literal

from volforecast.config import Settings
from volforecast.progress import Progress
from volforecast.schemas import DeploymentRecord
from volforecast.store import ModelsDirectory


def switch_live_set(
    settings: Settings,
    run_id: str | None,
    action: Literal["rollback", "promote"],
    progress: Progress,
) -> DeploymentRecord:
    """Make set ``run_id`` (None: the previous live set) of ``settings.symbol`` live.

    Raises ArtifactsMissingError (exit 4) for a run id that is not kept, IntegrityError (exit
    6) for a set that fails its checks, ConfigError (exit 2) for the set already live,
    LockTimeoutError (exit 7) while another run holds the lock.

    Examples
    --------
    >>> from volforecast.config import build_settings
    >>> switch_live_set(build_settings(), None, "rollback", print).run_id  # doctest: +SKIP
    '20261203T101500Z-1a2b3c'
    """
    models = ModelsDirectory.for_settings(settings)
    with models.lock(settings.lock_timeout, purpose=action):
        target = run_id or models.previous_live()
        progress(f"{action}: making set {target} live in {models.root}")
        entry = models.activate(target, action, keep=settings.archive_keep)
    progress(f"set {entry.run_id} is live (was {entry.previous_run_id or 'none'})")
    return entry
