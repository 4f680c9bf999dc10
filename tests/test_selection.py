"""The selection protocol: the rule, the packaged choice, and a development run that never
reads the evaluation period."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from volforecast import ensemble, selection
from volforecast.cli import main
from volforecast.commands.select import run_select
from volforecast.errors import ConfigError
from volforecast.schemas import CandidateScore, CandidateSpec, SelectionRecord
from volforecast.selection import make_ensemble

from .conftest import synthetic_market, write_market


def _score(symbol: str, horizon: int, model: str, rmse_ratio: float, qlike_ratio: float):
    return CandidateScore(
        symbol=symbol, horizon=horizon, model=model, n_forecasts=100, rmse=rmse_ratio,
        qlike=qlike_ratio, rmse_ratio_har_rv=rmse_ratio, qlike_ratio_har_rv=qlike_ratio,
        log_score=selection.log_score(rmse_ratio, qlike_ratio),
    )  # fmt: skip


def test_log_score_is_the_mean_of_the_two_log_ratios_when_computed():
    assert selection.log_score(0.9, 0.8) == pytest.approx((np.log(0.9) + np.log(0.8)) / 2)
    assert selection.log_score(1.0, 1.0) == 0.0


def _spec(name: str, cost: float = 1.0) -> CandidateSpec:
    return CandidateSpec(name=name, description="", core=[], core_logs=[], bias="duan",
                         cost=cost, xgb_params={}, lgbm_params={})  # fmt: skip


def _mean_score(value: float, symbol: str = "SPY", model: str = "a", horizon: int = 5):
    # A score whose log_score is ``value`` (both ratios exp(value)).
    ratio = float(np.exp(value))
    return _score(symbol, horizon, model, ratio, ratio)


def test_choose_picks_the_lowest_mean_score_over_series_when_series_disagree():
    scores = [
        _score("SPY", 5, "a", 0.90, 0.80),  # a: best on SPY ...
        _score("QQQ", 5, "a", 1.00, 1.00),
        _score("SPY", 5, "b", 0.92, 0.85),  # ... b: better on average
        _score("QQQ", 5, "b", 0.95, 0.90),
    ]
    assert selection.choose(scores, [_spec("a"), _spec("b")]) == {5: "b"}


def test_choose_keeps_the_earlier_candidate_when_two_tie():
    scores = [_score("SPY", 1, "a", 0.9, 0.9), _score("SPY", 1, "b", 0.9, 0.9)]
    assert selection.choose(scores, [_spec("a"), _spec("b")]) == {1: "a"}
    assert selection.choose(scores, [_spec("b"), _spec("a")]) == {1: "b"}


def test_choose_prefers_a_cheaper_candidate_when_it_scores_within_the_margin():
    scores = [_mean_score(-0.100, model="a"), _mean_score(-0.096, model="b")]
    assert selection.choose(scores, [_spec("a", 2.0), _spec("b", 1.0)]) == {5: "b"}


def test_choose_keeps_the_costlier_candidate_when_the_cheaper_is_beyond_the_margin():
    scores = [_mean_score(-0.100, model="a"), _mean_score(-0.094, model="b")]
    assert selection.choose(scores, [_spec("a", 2.0), _spec("b", 1.0)]) == {5: "a"}


def test_choose_takes_the_best_of_equally_cheap_candidates_within_the_margin():
    scores = [_mean_score(-0.100, model="a"), _mean_score(-0.097, model="b"),
              _mean_score(-0.098, model="c")]  # fmt: skip
    specs = [_spec("a", 2.0), _spec("b", 1.0), _spec("c", 1.0)]
    assert selection.choose(scores, specs) == {5: "c"}


def test_choose_leaves_out_a_candidate_not_scored_on_every_series_when_choosing():
    scores = [
        _score("SPY", 5, "a", 0.5, 0.5),
        _score("SPY", 5, "b", 0.9, 0.9),
        _score("QQQ", 5, "b", 0.9, 0.9),
    ]
    assert selection.choose(scores, [_spec("a"), _spec("b")]) == {5: "b"}


def test_candidate_names_are_unique_and_each_builds_an_ensemble_when_named():
    names = [c.name for c in selection.CANDIDATES]
    assert len(names) == len(set(names)) == 16
    assert "range_vix_rel+light+normal_bias" in names


def test_candidate_descriptions_cover_every_meta_learner_when_read_from_schemas():
    # The names live once, in schemas; the ensemble and the candidate descriptions read them.
    assert ensemble.META_LEARNERS == ("ridge", "core_mix", "loss_mix")
    assert set(selection._META_TEXT) == set(ensemble.META_LEARNERS)
    assert ensemble.BIAS_CORRECTIONS == ("duan", "normal")


def test_core_mix_candidate_builds_an_ensemble_mixing_in_the_core_when_named(make_settings):
    model = make_ensemble(make_settings(candidate="range_vix_rel+deep+core_mix", horizon=5))
    assert model.meta == "core_mix"
    assert model.xgb_params is not None and model.xgb_params["max_depth"] == 3
    assert make_ensemble(make_settings(candidate="range_vix_rel+deep", horizon=5)).meta == "ridge"


def test_unknown_candidate_raises_config_error_naming_the_choices(make_settings):
    with pytest.raises(ConfigError, match="range_vix_rel\\+light"):
        make_ensemble(make_settings(candidate="nope"))


def test_candidate_setting_overrides_the_packaged_choice_when_given(make_settings):
    model = make_ensemble(make_settings(candidate="rv_vix+deep", horizon=5))
    assert model.core == ("spy_rv_1d", "spy_rv_5d", "spy_rv_22d", "vix_level")
    assert model.xgb_params is not None and model.xgb_params["max_depth"] == 3


def test_chosen_for_takes_the_nearest_selected_horizon_when_not_selected(monkeypatch):
    record = selection.packaged_record().model_copy(
        update={"chosen": {"1": "rv_vix+light", "5": "range_vix+light", "22": "rv_vix+deep"}}
    )
    monkeypatch.setattr(selection, "packaged_record", lambda: record)
    assert selection.chosen_for(1).name == "rv_vix+light"
    assert selection.chosen_for(2).name == "rv_vix+light"
    assert selection.chosen_for(3).name == "rv_vix+light"  # a tie goes to the shorter
    assert selection.chosen_for(10).name == "range_vix+light"
    assert selection.chosen_for(40).name == "rv_vix+deep"


def test_packaged_record_was_made_with_todays_candidates_when_shipped():
    # Changing a candidate without re-running `volforecast select` fails here.
    record = selection.packaged_record()
    assert [c.model_dump() for c in record.candidates] == [
        c.model_dump() for c in selection.CANDIDATES
    ]
    assert sorted(int(h) for h in record.chosen) == [1, 5, 22]
    assert record.dev_end < dt.date(2013, 1, 1) and record.symbols == ["SPY", "QQQ"]
    # The choice follows from the record's own scores by the rule.
    chosen = selection.choose(record.scores, record.candidates)
    assert {str(h): n for h, n in chosen.items()} == record.chosen


def test_default_ensemble_is_the_packaged_choice_for_its_horizon(make_settings):
    for h in (1, 5, 22):
        assert (
            selection.ensemble_spec(make_settings(horizon=h)).name
            == selection.packaged_record().chosen[str(h)]
        )


@pytest.fixture
def two_candidates(monkeypatch):
    monkeypatch.setattr(selection, "CANDIDATES", selection.CANDIDATES[:2])


def _select(make_settings, tmp_path, data_dir, out):
    # One thread per fit: on tiny data a second OpenMP thread only adds wake-up latency.
    settings = make_settings(threads=1, data_dir=data_dir, dev_start=dt.date(2015, 1, 1),
                             dev_eval_start=dt.date(2017, 6, 1), eval_start=dt.date(2018, 1, 2),
                             refit_every=63, horizons=[5], symbols=["SPY"], output_dir=out)  # fmt: skip
    return run_select(settings, lambda _m: None)


@pytest.mark.slow
def test_select_scores_every_candidate_and_yardstick_only_before_eval_start(
    make_settings, tmp_path, two_candidates
):
    spy, vix = synthetic_market(n_days=900, seed=3)
    record, paths = _select(make_settings, tmp_path, write_market(tmp_path / "d", spy, vix),
                            tmp_path / "o")  # fmt: skip
    assert sorted(p.name for p in paths) == ["selection.json", "selection.md"]
    assert {s.model for s in record.scores} == {
        "range_vix_rel+light", "range_vix_rel+medium", "har_rv", "har_core"
    }  # fmt: skip
    # The last scored target (5 days ahead) ends before the evaluation period starts.
    assert record.dev_end < dt.date(2018, 1, 2)
    assert record.dev_eval_start >= dt.date(2017, 6, 1)
    har = next(s for s in record.scores if s.model == "har_rv")
    assert har.rmse_ratio_har_rv == 1.0 and har.log_score == 0.0
    assert record.chosen["5"] in {"range_vix_rel+light", "range_vix_rel+medium"}
    on_disk = SelectionRecord.model_validate_json((tmp_path / "o" / "selection.json").read_text())
    assert on_disk.chosen == record.chosen


@pytest.mark.slow
def test_select_is_unchanged_when_prices_after_the_development_period_are_scrambled(
    make_settings, tmp_path, two_candidates
):
    spy, vix = synthetic_market(n_days=900, seed=3)
    first, _ = _select(make_settings, tmp_path, write_market(tmp_path / "d1", spy, vix),
                       tmp_path / "o1")  # fmt: skip
    later = spy["date"] >= "2018-01-02"  # --eval-start: the first day select may not read
    scrambled = spy.copy()
    for col in ("open", "high", "low", "close", "adj_close"):
        scrambled.loc[later, col] = scrambled.loc[later, col] * 3.0
    second, _ = _select(make_settings, tmp_path, write_market(tmp_path / "d2", scrambled, vix),
                        tmp_path / "o2")  # fmt: skip
    dump = [s.model_dump() for s in first.scores]
    assert dump == [s.model_dump() for s in second.scores]


def test_select_command_refuses_a_development_period_without_enough_history(
    make_settings, tmp_path, two_candidates, capsys
):
    spy, vix = synthetic_market(n_days=900, seed=3)
    data = write_market(tmp_path / "d", spy, vix)
    code = main(["select", "--source", "csv", "--data-dir", str(data), "--models-dir",
                 str(tmp_path / "m"), "--symbols", "SPY", "--horizons", "5",
                 "--dev-start", "2015-01-01", "--dev-eval-start", "2015-06-01",
                 "--eval-start", "2017-09-01", "--workers", "1"])  # fmt: skip
    assert code == 3
    assert "Fix: move --dev-eval-start later or --dev-start earlier" in capsys.readouterr().err


def test_train_records_the_ensemble_settings_it_used_in_history_and_pickle(
    make_settings, market_dir, tmp_path
):
    import pickle

    from volforecast.training import run_train

    settings = make_settings(candidate="rv_vix+light", threads=1)
    result = run_train(settings, lambda _m: None)
    assert result.record.ensemble_settings == "rv_vix+light"
    history = (tmp_path / "models" / "training_history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["ensemble_settings"] == "rv_vix+light"
    with (tmp_path / "models" / "model_90pct.pkl").open("rb") as f:
        artifact = pickle.load(f)
    assert artifact["ensemble_settings"] == "rv_vix+light"
    assert len(artifact["xgb_model"].linear_coef_) == 5  # intercept + rv 1/5/22 + VIX


def test_select_exits_2_saying_earlier_when_dev_eval_start_is_after_eval_start(tmp_path, capsys):
    code = main(["select", "--source", "csv", "--data-dir", str(tmp_path), "--models-dir",
                 str(tmp_path / "m"), "--dev-eval-start", "2014-01-01", "--eval-start",
                 "2013-01-01"])  # fmt: skip
    assert code == 2
    assert "Fix: move --dev-eval-start earlier" in capsys.readouterr().err


def test_select_exits_8_before_any_work_when_output_is_not_writable(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main(["select", "--source", "csv", "--data-dir", str(tmp_path), "--models-dir",
                 str(tmp_path / "m"), "--output", str(blocker / "sub")])  # fmt: skip
    assert code == 8
    assert "choose a writable --output" in capsys.readouterr().err
