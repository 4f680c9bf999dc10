"""Run metrics: the text file node_exporter reads, the Pushgateway push, the alert rules."""

from __future__ import annotations

import http.server
import json
import re
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from volforecast import telemetry
from volforecast.cli import main
from volforecast.config import build_settings
from volforecast.store import MONITORING_HISTORY

from .conftest import cli_args

ROOT = Path(__file__).resolve().parents[1]


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_monitor_metrics_file_carries_interval_coverage_and_var_exceedances(project, tmp_path):
    path = tmp_path / "volforecast_monitor.prom"
    assert main(cli_args(project, "monitor", "--metrics-file", str(path))) == 0
    samples = _samples(path)
    risk = json.loads((project / "models" / MONITORING_HISTORY).read_text().splitlines()[-1])[
        "risk"
    ]
    spy = (("symbol", "SPY"),)
    assert samples[("volforecast_monitor_interval_coverage_90", spy)] == risk["coverage"]["0.9"]
    assert samples[("volforecast_monitor_interval_coverage_50", spy)] == risk["coverage"]["0.5"]
    for tag, level in (("99", "0.99"), ("95", "0.95")):
        check = risk["var"][level]
        assert samples[(f"volforecast_monitor_var{tag}_exceedances", spy)] == check["exceedances"]
        assert samples[(f"volforecast_monitor_var{tag}_kupiec_p", spy)] == pytest.approx(
            check["kupiec_p"]
        )


def test_monitor_metrics_file_parses_and_carries_the_runs_numbers(project: Path, tmp_path: Path):
    path = tmp_path / "textfile" / "volforecast_monitor.prom"
    assert main(cli_args(project, "monitor", "--metrics-file", str(path))) == 0
    samples = _samples(path)
    line = json.loads((project / "models" / MONITORING_HISTORY).read_text().splitlines()[-1])
    spy = (("symbol", "SPY"),)
    assert samples[("volforecast_monitor_drift_pct", spy)] == pytest.approx(
        line["drift"]["model_a_drift_pct"]
    )
    assert samples[("volforecast_monitor_drift_level", spy)] in {0, 1, 2}
    assert samples[("volforecast_monitor_rmse", (("model", "a"), *spy))] == pytest.approx(
        line["comparison"]["model_a_rmse"]
    )
    assert samples[("volforecast_monitor_rmse", (("model", "b"), *spy))] == pytest.approx(
        line["comparison"]["model_b_rmse"]
    )
    assert (
        samples[("volforecast_monitor_model_b_win_rate_pct", spy)]
        == line["comparison"]["model_b_win_rate"]
    )
    recommended_b = line["recommendation"].startswith("USE MODEL B")
    assert samples[("volforecast_monitor_recommendation", (("model", "b"), *spy))] == recommended_b
    assert samples[("volforecast_monitor_retrain_advice", spy)] in {0, 1, 2}
    assert samples[("volforecast_monitor_rows_scored", spy)] == line["test_window"]["n_samples"]
    assert samples[("volforecast_monitor_duration_seconds", spy)] > 0
    assert samples[("volforecast_monitor_last_success_timestamp_seconds", spy)] > 1.7e9
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_monitor_metrics_file_is_replaced_by_rename_not_rewritten(project: Path, tmp_path: Path):
    path = tmp_path / "volforecast_monitor.prom"
    assert main(cli_args(project, "monitor", "--metrics-file", str(path))) == 0
    first = path.stat().st_ino
    assert main(cli_args(project, "monitor", "--metrics-file", str(path))) == 0
    assert path.stat().st_ino != first  # a new file renamed over: readers see old or new, whole


def test_train_metrics_file_carries_validation_rmse_and_success_time(project: Path, tmp_path: Path):
    path = tmp_path / "volforecast_train.prom"
    assert (
        main(cli_args(project, "train", "--as-of", "2018-01-25", "--metrics-file", str(path))) == 0
    )
    samples = _samples(path)
    record = json.loads(
        (project / "models" / "training_history.jsonl").read_text().splitlines()[-1]
    )
    spy = (("symbol", "SPY"),)
    assert samples[("volforecast_train_validation_rmse", spy)] == pytest.approx(
        record["model_a"]["validation_rmse"]
    )
    assert samples[("volforecast_train_last_success_timestamp_seconds", spy)] > 1.7e9


def test_monitor_exits_8_when_metrics_file_cannot_be_written(project: Path, capsys):
    blocker = project / "not-a-dir"
    blocker.write_text("x")
    assert main(cli_args(project, "monitor", "--metrics-file", str(blocker / "m.prom"))) == 8
    assert "cannot write the metrics file" in capsys.readouterr().err


@pytest.fixture
def pushgateway() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A stand-in Pushgateway on the loopback interface that records each push."""
    received: list[tuple[str, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def test_monitor_pushes_its_metrics_to_the_pushgateway(project: Path, pushgateway, monkeypatch):
    url, received = pushgateway
    monkeypatch.setenv("VOLF_PUSHGATEWAY_URL", url)
    assert main(cli_args(project, "monitor")) == 0
    [(path, body)] = received
    assert path == "/metrics/job/volforecast_monitor"
    assert b'volforecast_monitor_drift_pct{symbol="SPY"}' in body


def test_monitor_succeeds_with_a_warning_when_the_pushgateway_is_down(
    project: Path, monkeypatch, capsys
):
    monkeypatch.setenv("VOLF_PUSHGATEWAY_URL", "http://127.0.0.1:9")  # discard port: refused
    assert main(cli_args(project, "monitor")) == 0
    assert "could not push metrics" in capsys.readouterr().err


@pytest.fixture
def bad_gateway() -> Iterator[tuple[str, threading.Event, list[str]]]:
    """A loopback stand-in that misbehaves: ``mode[0]`` is "trickle" (a 200 status line, then one
    header line every second, never finishing) or "garbage" (a line that is no HTTP at all)."""
    stop = threading.Event()
    mode = ["trickle"]

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            if mode[0] == "garbage":
                self.request.sendall(b"this is not HTTP\r\n\r\n")
                return
            self.request.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.wait(1.0):
                try:
                    self.request.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    return

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stop, mode
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_monitor_ends_with_a_warning_when_the_pushgateway_never_finishes_answering(
    project: Path, bad_gateway, monkeypatch, capsys
):
    url, _stop, _mode = bad_gateway
    monkeypatch.setenv("VOLF_PUSHGATEWAY_URL", url)
    # Each header line comes within the client's per-read timeout: only a total deadline ends it.
    monkeypatch.setattr(telemetry, "PUSH_DEADLINE_SECONDS", 3.0)
    assert main(cli_args(project, "monitor")) == 0
    assert "no complete answer within 3 s" in capsys.readouterr().err
    assert len((project / "models" / MONITORING_HISTORY).read_text().splitlines()) == 1


def test_monitor_keeps_exit_0_and_one_history_line_when_the_pushgateway_answers_garbage(
    project: Path, bad_gateway, monkeypatch, capsys
):
    url, _stop, mode = bad_gateway
    mode[0] = "garbage"
    monkeypatch.setenv("VOLF_PUSHGATEWAY_URL", url)
    assert main(cli_args(project, "monitor")) == 0
    err = capsys.readouterr().err
    assert "could not push metrics" in err and "Traceback" not in err
    assert len((project / "models" / MONITORING_HISTORY).read_text().splitlines()) == 1


@pytest.mark.parametrize("url", ["http://[::1", "not a url", "ftp://gateway:9091", "http://:9091"])
def test_monitor_exits_2_before_any_work_when_the_pushgateway_url_is_invalid(
    project: Path, url, monkeypatch, capsys
):
    monkeypatch.setenv("VOLF_PUSHGATEWAY_URL", url)
    assert main(cli_args(project, "monitor")) == 2
    assert "VOLF_PUSHGATEWAY_URL" in capsys.readouterr().err
    assert not (project / "models" / MONITORING_HISTORY).exists()


@pytest.mark.parametrize("url", ["pushgateway:9091", "https://gw.example:443/prefix"])
def test_pushgateway_url_is_accepted_when_prometheus_client_can_push_to_it(url):
    assert build_settings(pushgateway_url=url).pushgateway_url == url


def test_alert_rules_use_only_metrics_that_train_and_monitor_write(project: Path, tmp_path: Path):
    files = {c: tmp_path / f"{c}.prom" for c in ("train", "monitor")}
    assert main(cli_args(project, "monitor", "--metrics-file", str(files["monitor"]))) == 0
    assert (
        main(
            cli_args(
                project, "train", "--as-of", "2018-01-25", "--metrics-file", str(files["train"])
            )
        )
        == 0
    )
    written = {name for f in files.values() for (name, _labels) in _samples(f)}
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {m for e in exprs for m in re.findall(r"\bvolforecast_[a-z_]+", e)}
    assert used and used <= written
    assert any("drift_pct > 10" in e for e in exprs)
    assert any("monitor_last_success_timestamp_seconds > 2 * 86400" in e for e in exprs)
    severity = {r["alert"]: r["labels"]["severity"] for g in rules["groups"] for r in g["rules"]}
    # Paging follows the proven signals; the spec's drift rule is informational only.
    assert severity["VolforecastRetrainAdvised"] == "warning"
    assert severity["VolforecastSetTooOld"] == "critical"
    assert severity["VolforecastSpecDriftRule"] == "info"


def test_monitor_keeps_exit_0_and_warns_when_the_metrics_file_fails_after_the_run(
    project: Path, tmp_path: Path, monkeypatch, capsys
):
    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(telemetry, "write_to_textfile", full_disk)
    assert main(cli_args(project, "monitor", "--metrics-file", str(tmp_path / "m.prom"))) == 0
    assert "could not write the metrics file" in capsys.readouterr().err
    assert len((project / "models" / MONITORING_HISTORY).read_text().splitlines()) == 1


@pytest.mark.slow
def test_universe_logs_each_failing_symbol_and_exits_11_when_metrics_also_fail(
    project: Path, tmp_path: Path, monkeypatch, capsys
):
    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(telemetry, "write_to_textfile", full_disk)
    args = cli_args(project, "monitor", "--symbols", "spy,xle", "--workers", "1",
                    "--metrics-file", str(tmp_path / "m.prom"))  # fmt: skip
    assert main(args) == 11
    err = capsys.readouterr().err
    assert err.index("monitor XLE failed (exit 4)") < err.index("could not write the metrics file")
