"""volforecast monitor (volforecast.monitoring, commands/monitor): what it scores, records and
says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from volforecast.cli import main
from volforecast.store import (
    MONITORING_HISTORY,
)

from .conftest import cli_args


def test_monitor_skips_feature_drift_and_says_so_when_start_is_after_training(
    project: Path, capsys
):
    assert main(cli_args(project, "monitor", "--start", "2017-09-01")) == 0
    err = capsys.readouterr().err
    assert "feature drift not computed: only 0 of Model A's training rows" in err
    line = (project / "models" / MONITORING_HISTORY).read_text().splitlines()[-1]
    assert json.loads(line)["feature_drift"]["skipped"].startswith("only 0 of")


def test_monitor_prints_the_rule_behind_its_recommendation(project: Path, capsys):
    assert main(cli_args(project, "monitor")) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Recommendation"))
    assert re.match(r"Recommendation: USE MODEL [AB] \([^)]*\): Model B won \d+% of windows", line)
