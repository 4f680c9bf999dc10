"""The library's front door: fit and use the ensemble from Python, without the CLI, without
environment variables.

``VolForecaster`` is a scikit-learn style estimator of the h-day realized volatility (``__init__``
stores settings, ``fit`` returns ``self``, learned attributes end in ``_``, ``predict`` before
``fit`` raises ``sklearn.exceptions.NotFittedError``). By default it applies the packaged
selection for its horizon: the same setting ``volforecast train`` fits. ``load_models`` reads a
models directory written by ``volforecast train`` (integrity checked as the monitor does) and
returns Model A and Model B as objects with ``predict``; ``read_market`` and ``sample_market``
give the market data both take.

Examples
--------
>>> import volforecast as vf
>>> market = vf.sample_market()                            # offline: arch's S&P 500 and VIX
>>> model = vf.VolForecaster(horizon=5).fit(market)
>>> forecast = model.predict(market)                       # one value per day with features
>>> forecast.name, bool((forecast > 0).all())
('forecast', True)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from volforecast import selection
from volforecast.config import DEFAULT_IMPLIED_VOL, PRIMARY_SYMBOL
from volforecast.data import SAMPLE_ORIGIN, MarketData, assemble_market, load_sample, read_csv_pair
from volforecast.ensemble import StackedEnsemble, predict_artifact
from volforecast.features import FEATURE_COLUMNS, TARGET, build_dataset, labeled
from volforecast.schemas import CandidateSpec
from volforecast.store import CurrentModels, ModelsDirectory, symbol_root

FORECAST = "forecast"


def read_market(
    data_dir: str | Path,
    symbol: str = PRIMARY_SYMBOL,
    implied_vol: str = DEFAULT_IMPLIED_VOL,
) -> MarketData:
    """Daily prices of ``symbol`` and its implied-volatility index from CSV files, validated and
    aligned as ``--source csv`` reads them.

    Parameters
    ----------
    data_dir : str or Path
        Folder with ``<symbol>_daily.csv`` (date, open, high, low, close, adj_close) and
        ``<implied_vol>_daily.csv`` (date, close), lower-case names.
    symbol, implied_vol : str
        Tickers, e.g. ``"QQQ"`` and ``"VXN"``.

    Returns
    -------
    MarketData
        ``.frame`` holds the aligned columns every feature is built from.

    Raises
    ------
    DataError
        A file is missing or a row is implausible; the message names the row and the fix.
    """
    folder = Path(data_dir)
    symbol, implied_vol = symbol.upper(), implied_vol.upper()
    prices, iv = read_csv_pair(folder, symbol, implied_vol)
    return assemble_market(prices, iv, f"csv files in {folder}", symbol, implied_vol)


def sample_market() -> MarketData:
    """The offline sample shipped by ``arch`` (the S&P 500 index, 1999–2018, and the VIX,
    2014–2019), aligned: a way to try the library without data of one's own.

    Examples
    --------
    >>> sample_market().frame.index[0].year
    2014
    """
    spx, vix = load_sample()
    return assemble_market(spx, vix, SAMPLE_ORIGIN, PRIMARY_SYMBOL, DEFAULT_IMPLIED_VOL)


def _features(data: MarketData | pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The feature rows of ``data``, columns in the models' order: ``data`` is market data
    (features are built, one row per day with a complete history) or already holds the 20
    feature columns (selected by name, in any order)."""
    frame = data.frame if isinstance(data, MarketData) else data
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected MarketData or a pandas DataFrame, got {type(data).__name__}")
    if set(FEATURE_COLUMNS) <= set(frame.columns):
        return frame.loc[:, list(FEATURE_COLUMNS)]
    market_columns = {"spy_open", "spy_high", "spy_low", "spy_close", "spy_adj_close", "vix_close"}
    missing = sorted(market_columns - set(frame.columns))
    if missing:
        raise ValueError(
            "need market data (read_market, sample_market) or the 20 feature columns; "
            f"missing market columns: {', '.join(missing)}"
        )
    return build_dataset(frame, horizon).loc[:, list(FEATURE_COLUMNS)]


def _series(index: pd.Index, values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=index, name=FORECAST)


class VolForecaster:
    """Forecast the realized volatility of the next ``horizon`` trading days (daily units).

    Parameters
    ----------
    horizon : int, default 5
        Trading days of the target window.
    candidate : str or None, default None
        A setting of ``volforecast.selection.CANDIDATES`` by name; None applies the packaged
        selection's choice for ``horizon`` (what ``volforecast train`` fits).
    seed : int, default 42
        Seed of both boosted learners: the same data gives the same model, bit for bit.
    n_jobs : int, default 1
        Threads per fit (one is fastest on a shared machine).

    Attributes
    ----------
    spec_ : CandidateSpec
        The ensemble setting that was fitted.
    ensemble_ : StackedEnsemble
        The fitted stacked ensemble.
    feature_names_in_ : ndarray of str
        The 20 features, in the order the models read them.
    n_features_in_ : int
    training_date_start_, training_date_end_ : datetime.date
        The first and last day whose target was fitted.

    Examples
    --------
    >>> import volforecast as vf
    >>> market = vf.sample_market()
    >>> model = vf.VolForecaster(horizon=5).fit(market)
    >>> model.n_features_in_
    20
    >>> vf.VolForecaster().predict(market)
    Traceback (most recent call last):
    ...
    sklearn.exceptions.NotFittedError: This VolForecaster is not fitted yet: call fit(market) first.
    """

    def __init__(
        self, horizon: int = 5, candidate: str | None = None, seed: int = 42, n_jobs: int = 1
    ) -> None:
        self.horizon = horizon
        self.candidate = candidate
        self.seed = seed
        self.n_jobs = n_jobs

    def _spec(self) -> CandidateSpec:
        if self.candidate is not None:
            return selection.candidate(self.candidate)
        return selection.chosen_for(self.horizon)

    def fit(self, market: MarketData | pd.DataFrame) -> VolForecaster:
        """Fit on every day of ``market`` whose target window is complete.

        Parameters
        ----------
        market : MarketData or DataFrame
            Daily market data (``read_market``, ``sample_market`` or their ``.frame``).

        Returns
        -------
        VolForecaster
            ``self``, fitted.
        """
        frame = market.frame if isinstance(market, MarketData) else market
        data = labeled(build_dataset(frame, self.horizon))
        if data.empty:
            raise ValueError(
                f"no day of the data has complete features and a {self.horizon}-day target; "
                "give a longer history"
            )
        spec = self._spec()
        ensemble = StackedEnsemble(
            horizon=self.horizon,
            seed=self.seed,
            n_jobs=self.n_jobs,
            **selection.ensemble_kwargs(spec),
        )
        ensemble.fit(data.loc[:, list(FEATURE_COLUMNS)], data[TARGET])
        self.spec_ = spec
        self.ensemble_ = ensemble
        self.feature_names_in_ = np.asarray(FEATURE_COLUMNS, dtype=object)
        self.n_features_in_ = len(FEATURE_COLUMNS)
        self.training_date_start_: dt.date = data.index[0].date()
        self.training_date_end_: dt.date = data.index[-1].date()
        return self

    def predict(self, data: MarketData | pd.DataFrame) -> pd.Series:
        """The forecast of every row: of each day of market data with complete features, or of
        each row of a table that holds the 20 feature columns (matched by name).

        Returns
        -------
        Series
            Named ``forecast``, indexed like the rows, in daily units (× sqrt(252) × 100 for
            annualized percent).
        """
        if not hasattr(self, "ensemble_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(market) first."
            )
        X = _features(data, self.horizon)
        return _series(X.index, self.ensemble_.predict(X))


@dataclass(frozen=True)
class LoadedModel:
    """One model of a set written by ``volforecast train`` (``label`` "A" or "B").

    ``artifact`` is the pickled dict of the models-directory spec, unchanged.
    """

    label: str
    artifact: dict[str, Any]

    @property
    def horizon(self) -> int:
        return int(self.artifact.get("horizon", 5))

    @property
    def feature_names_in_(self) -> np.ndarray:
        return np.asarray(self.artifact["feature_cols"], dtype=object)

    @property
    def training_date_end(self) -> dt.date:
        return dt.date.fromisoformat(str(self.artifact["training_date_end"]))

    def predict(self, data: MarketData | pd.DataFrame) -> pd.Series:
        """The forecast of every row, as the spec's usage snippet computes it (see
        ``VolForecaster.predict`` for what ``data`` may be)."""
        X = _features(data, self.horizon).loc[:, list(self.artifact["feature_cols"])]
        return _series(X.index, predict_artifact(self.artifact, X))


@dataclass(frozen=True)
class ModelSet:
    """The current set of a models directory: Model A (90%), Model B (all-30) and the files
    they came with (``current``: baselines and training record, as the monitor reads them)."""

    model_a: LoadedModel
    model_b: LoadedModel
    current: CurrentModels

    @property
    def run_id(self) -> str:
        return self.current.run_id


def load_models(
    path: str | Path = "models", symbol: str = PRIMARY_SYMBOL, signing_key: bytes | None = None
) -> ModelSet:
    """The current model set of ``symbol`` in the models directory ``path``, verified against
    its manifest (and signature, with ``signing_key``) before anything is unpickled.

    Raises
    ------
    ArtifactsMissingError
        No set has been trained there yet.
    IntegrityError
        A file does not match its manifest, or the set belongs to another symbol.

    Examples
    --------
    >>> models = load_models("models", symbol="SPY")      # doctest: +SKIP
    >>> models.model_a.predict(read_market("data")).iloc[-1]  # doctest: +SKIP
    """
    symbol = symbol.upper()
    directory = ModelsDirectory(symbol_root(Path(path), symbol), signing_key, symbol=symbol)
    current = directory.load_current()
    return ModelSet(
        model_a=LoadedModel("A", current.model_a),
        model_b=LoadedModel("B", current.model_b),
        current=current,
    )
