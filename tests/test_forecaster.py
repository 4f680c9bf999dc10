"""The public API: VolForecaster, load_models, read_market, sample_market (and the README's
library example, run as written)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import volforecast as vf
from volforecast import selection
from volforecast.ensemble import predict_artifact
from volforecast.errors import ArtifactsMissingError
from volforecast.features import FEATURE_COLUMNS, build_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[vf.VolForecaster, vf.MarketData]:
    from .conftest import synthetic_market, write_market

    spy, vix = synthetic_market(n_days=900, seed=11)
    market = vf.read_market(write_market(tmp_path_factory.mktemp("api") / "data", spy, vix))
    return vf.VolForecaster(horizon=5).fit(market), market


def _readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block under {heading!r}"
    return match.group(1)


def test_readme_library_example_runs_as_written_when_a_set_is_trained(project: Path, capsys):
    code = _readme_block("## The library")
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "annualized" in out and "Model A" in out


def test_predict_raises_not_fitted_error_when_called_before_fit(fitted):
    _model, market = fitted
    with pytest.raises(NotFittedError, match="call fit"):
        vf.VolForecaster().predict(market)


def test_fit_applies_the_packaged_selection_when_no_candidate_is_given(fitted):
    model, _market = fitted
    assert model.spec_.name == selection.chosen_for(5).name
    assert list(model.feature_names_in_) == list(FEATURE_COLUMNS) and model.n_features_in_ == 20


def test_fit_uses_the_named_candidate_when_one_is_given():
    assert vf.VolForecaster(horizon=5, candidate="rv_vix+deep")._spec().name == "rv_vix+deep"


def test_predict_matches_columns_by_name_when_a_feature_table_is_shuffled(fitted):
    model, market = fitted
    features = build_dataset(market.frame, 5)
    shuffled = features.loc[:, list(reversed(features.columns))]
    pd.testing.assert_series_equal(model.predict(shuffled), model.predict(market))
    assert model.predict(market).index.equals(features.index)


def test_predict_names_the_missing_columns_when_the_table_is_neither_market_nor_features(fitted):
    model, market = fitted
    with pytest.raises(ValueError, match="vix_close"):
        model.predict(market.frame.drop(columns=["vix_close"]))


def test_fit_gives_bit_identical_forecasts_when_refitted_with_the_same_seed(fitted):
    model, market = fitted
    again = vf.VolForecaster(horizon=5).fit(market)
    assert np.array_equal(again.predict(market).to_numpy(), model.predict(market).to_numpy())


def test_load_models_predicts_as_the_spec_snippet_when_given_market_data(project: Path):
    models = vf.load_models(project / "models", symbol="spy")
    market = vf.read_market(project / "data")
    X = build_dataset(market.frame, 5)[list(models.model_a.artifact["feature_cols"])]
    for loaded in (models.model_a, models.model_b):
        expected = predict_artifact(loaded.artifact, X)
        assert np.array_equal(loaded.predict(market).to_numpy(), expected)
    assert models.run_id == models.current.dual.run_id and models.model_b.label == "B"


def test_load_models_raises_artifacts_missing_when_nothing_was_trained(tmp_path: Path):
    (tmp_path / "models").mkdir()
    with pytest.raises(ArtifactsMissingError):
        vf.load_models(tmp_path / "models")


def test_import_volforecast_loads_no_model_library_when_nothing_is_used():
    probe = "import sys, volforecast; print('xgboost' in sys.modules, 'lightgbm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
