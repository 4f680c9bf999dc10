"""The classical volatility forecasters the ensemble has to beat.

Each baseline follows the scikit-learn shape used in the walk-forward: ``fit(train, returns)``
learns from the labeled training rows (features plus ``target``) and the daily log returns known
when the model is refit, and returns self; ``predict(rows, returns)`` forecasts the realized
volatility of the next ``horizon`` days at each row's date, in the target's daily units, using
returns up to that date only.

- ``RandomWalk``: the realized volatility of the last ``horizon`` days (the target's own window,
  looking back).

The regressions and the random walk floor their variance forecasts at the 1st percentile of the
training window's realized variances (``training_floor``).
- ``EWMA``: RiskMetrics, sigma2_t = lam * sigma2_{t-1} + (1 - lam) * r_t^2, flat over the horizon.
- ``HAR``: Corsi (2009), OLS of the next-horizon realized variance on the 1-, 5- and 22-day
  realized variances (``kind="rv"``) or on the same windows of the Parkinson range estimator
  (``kind="parkinson"``).
- ``LogHARX``: OLS of log realized variance on the logs of the 1-, 5-, 22-day realized volatility
  and VIX; forecasts are bias-corrected by Duan's smearing factor, the mean of exp(residual):
  exp(s^2 / 2) assumes normal residuals, which log realized variance is far from at short
  horizons (at h = 1 it is a log chi-square, and exp(s^2 / 2) made forecasts 2.6 times too high).
- ``HARCore``: the ensemble's own log-linear core fitted alone, no trees (by default log-HAR on
  the 1-, 5-, 22-day realized and Parkinson volatilities, VIX and ``vix_rel_22d``), with the
  same Duan correction: the strongest simple model we know with daily data, and the yardstick
  the boosted trees must beat to earn their cost.
- ``GARCHForecaster``: GARCH(1,1) or GJR-GARCH(1,1,1) with Student-t errors from ``arch``, refit
  on the returns through the last training target, h-step variance forecasts averaged over the
  horizon. With ``distribution=True`` it also gives its forecast distribution
  (``volforecast.distributions``): the next day's VaR and ES from the fitted Student-t, and
  quantiles of the h-day realized volatility (exact for h = 1; for longer horizons from
  ``arch``'s simulated paths, seeded).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from arch import arch_model
from scipy.stats import t as student_t

from volforecast.calibration import ewma_variance
from volforecast.ensemble import (
    HAR_CORE,
    HAR_CORE_LOGS,
    MIN_VOL,
    FloatArray,
    fit_log_core,
    ols,
)
from volforecast.features import TARGET

# Last-resort variance floor (daily units) where no training data gives one (EWMA, GARCH).
MIN_VARIANCE = 1e-10
# arch's optimiser is better conditioned on percent returns.
_PCT = 100.0


def _vol(variance: Any, floor: float = MIN_VARIANCE) -> FloatArray:
    return np.sqrt(np.maximum(np.asarray(variance, dtype=np.float64), floor))


# Forecasts are floored at this quantile of the training window's positive realized variances.
FLOOR_QUANTILE = 0.01


def training_floor(train: pd.DataFrame) -> float:
    """The 1st percentile of the positive realized variances among the training targets: a
    forecast below it (a negative HAR variance, a day without a price change for the random
    walk at h = 1) means "calmer than 99% of what was seen", and is clipped there rather than
    at a number that makes QLIKE explode. The minimum would not do at h = 1, where the smallest
    squared daily return is next to zero."""
    y = np.asarray(train[TARGET], dtype=np.float64) ** 2
    positive = y[y > 0]
    return float(np.quantile(positive, FLOOR_QUANTILE)) if positive.size else MIN_VARIANCE


def _with_intercept(X: FloatArray, coef: FloatArray) -> FloatArray:
    return np.asarray(coef[0] + X @ coef[1:], dtype=np.float64)


class RandomWalk:
    """Forecast = the realized volatility of the last ``horizon`` days, to each row's date."""

    name = "random_walk"

    def __init__(self, horizon: int = 5) -> None:
        self.horizon = horizon

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> RandomWalk:
        self.floor_ = training_floor(train)
        return self

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> FloatArray:
        known = returns.loc[: rows.index[-1]]
        variance = (known**2).rolling(self.horizon, min_periods=self.horizon).mean()
        return _vol(variance.reindex(rows.index).to_numpy(), self.floor_)


class EWMA:
    """RiskMetrics exponentially weighted variance, seeded with the first 22 days' variance."""

    name = "ewma"

    def __init__(self, lam: float = 0.94) -> None:
        self.lam = lam

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> EWMA:
        return self

    def variance(self, returns: pd.Series) -> pd.Series:
        """sigma2 at each date, after that date's return (so it forecasts the next days)."""
        return ewma_variance(returns, self.lam)

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> FloatArray:
        known = returns.loc[: rows.index[-1]]
        return _vol(self.variance(known).reindex(rows.index).to_numpy())


_HAR_COLUMNS = {
    "rv": ("spy_rv_1d", "spy_rv_5d", "spy_rv_22d"),
    "parkinson": ("spy_parkinson_1d", "spy_parkinson_5d", "spy_parkinson_22d"),
}


class HAR:
    """HAR on realized variance (``kind="rv"``) or on the Parkinson range variance."""

    def __init__(self, kind: str = "rv") -> None:
        self.kind = kind

    @property
    def name(self) -> str:
        return "har_rv" if self.kind == "rv" else "har_parkinson"

    def _design(self, rows: pd.DataFrame) -> FloatArray:
        return np.asarray(rows.loc[:, list(_HAR_COLUMNS[self.kind])], dtype=np.float64) ** 2

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> HAR:
        y = np.asarray(train[TARGET], dtype=np.float64) ** 2
        self.coef_, self.resid_var_ = ols(self._design(train), y)
        self.floor_ = training_floor(train)
        return self

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> FloatArray:
        return _vol(_with_intercept(self._design(rows), self.coef_), self.floor_)


def core_design(rows: pd.DataFrame, core: Sequence[str], core_logs: Sequence[str]) -> FloatArray:
    """The HAR core's regressors: logs of ``core``, ``core_logs`` as they are."""
    x = np.asarray(rows.loc[:, list(core)], dtype=np.float64)
    logs = np.asarray(rows.loc[:, list(core_logs)], dtype=np.float64)
    return np.column_stack([np.log(np.maximum(x, MIN_VOL)), logs])


def log_variance(rows: pd.DataFrame) -> FloatArray:
    """The core's target: log of the realized variance (floored at ``MIN_VOL``)."""
    return 2.0 * np.log(np.maximum(np.asarray(rows[TARGET], dtype=np.float64), MIN_VOL))


class HARCore:
    """The ensemble's log-linear HAR core alone: log RV^2 on logged ``core`` regressors and on
    ``core_logs`` (logs already), bias-corrected as the ensemble's core is."""

    name = "har_core"

    def __init__(
        self,
        core: Sequence[str] = HAR_CORE,
        core_logs: Sequence[str] = HAR_CORE_LOGS,
        bias: str = "duan",
    ) -> None:
        self.core = core
        self.core_logs = core_logs
        self.bias = bias

    def _design(self, rows: pd.DataFrame) -> FloatArray:
        return core_design(rows, self.core, self.core_logs)

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> HARCore:
        core = fit_log_core(self._design(train), log_variance(train), self.bias)
        self.coef_, self.log_bias_, self.resid_var_ = core.coef, core.log_bias, core.resid_var
        self.floor_ = training_floor(train)
        return self

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> FloatArray:
        log_var = _with_intercept(self._design(rows), self.coef_) + self.log_bias_
        return _vol(np.exp(log_var), self.floor_)


class LogHARX(HARCore):
    """Log-HAR with VIX: the same regression as ``HARCore`` on log rv_1d, rv_5d, rv_22d and VIX
    only, Duan-corrected."""

    name = "log_har_vix"
    columns = ("spy_rv_1d", "spy_rv_5d", "spy_rv_22d", "vix_level")

    def __init__(self) -> None:
        super().__init__(core=self.columns, core_logs=(), bias="duan")

    @property
    def smearing_(self) -> float:
        """Duan's (1983) smearing factor, the mean of exp(residual)."""
        return float(np.exp(self.log_bias_))


class GARCHForecaster:
    """GARCH(1,1) (``asymmetric=False``) or GJR-GARCH(1,1,1), Student-t, zero mean."""

    def __init__(
        self,
        horizon: int = 5,
        asymmetric: bool = False,
        distribution: bool = False,
        levels: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
        simulations: int = 1000,
        seed: int = 42,
    ) -> None:
        self.horizon = horizon
        self.asymmetric = asymmetric
        self.distribution = distribution
        self.levels = levels
        self.simulations = simulations
        self.seed = seed

    @property
    def name(self) -> str:
        return "gjr_garch_t" if self.asymmetric else "garch_t"

    def _model(self, returns: pd.Series) -> Any:
        return arch_model(
            returns.dropna() * _PCT,
            mean="Zero",
            vol="GARCH",
            p=1,
            o=1 if self.asymmetric else 0,
            q=1,
            dist="t",
            rescale=False,
        )

    def fit(self, train: pd.DataFrame, returns: pd.Series) -> GARCHForecaster:
        # The last return any training target used: the same information as the other models.
        last_train = train.index[-1]
        pos = int(returns.index.searchsorted(last_train))
        window_end = returns.index[min(pos + self.horizon, len(returns) - 1)]
        known = returns.loc[:window_end].dropna()
        with warnings.catch_warnings():
            # Convergence chatter on calm samples; the parameters are still usable.
            warnings.simplefilter("ignore")
            result = self._model(known).fit(disp="off", show_warning=False)
        self.params_ = result.params
        return self

    @classmethod
    def fitted(
        cls, params: Mapping[str, float], horizon: int, asymmetric: bool, **settings: Any
    ) -> GARCHForecaster:
        """A forecaster with stored parameters (``params_`` of an earlier fit, e.g. read back
        from a model pickle), ready to ``predict`` without fitting again."""
        model = cls(horizon, asymmetric=asymmetric, **settings)
        model.params_ = pd.Series({k: float(v) for k, v in params.items()}, dtype=np.float64)
        return model

    def _forecast(self, index: pd.Index, returns: pd.Series) -> tuple[Any, Any]:
        known = returns.loc[: index[-1]].dropna()
        model = self._model(known)
        forecast = model.forecast(self.params_, horizon=self.horizon, start=index[0], reindex=False)
        return model, forecast

    def predict(self, rows: pd.DataFrame, returns: pd.Series) -> Any:
        model, forecast = self._forecast(rows.index, returns)
        variance = forecast.variance.mean(axis=1).reindex(rows.index) / _PCT**2
        point = _vol(variance.to_numpy())
        if not self.distribution:
            return point
        from volforecast.distributions import distribution_frame

        return distribution_frame(
            rows.index, self._distribution(model, forecast, rows.index), point
        )

    def distribution_on(self, index: pd.Index, returns: pd.Series) -> dict[str, FloatArray]:
        """The forecast distribution made on each date of ``index`` (consecutive trading days
        of ``returns``), from ``returns`` up to that date only: ``scale``, ``var<level>`` and
        ``es<level>`` of the next day and ``q<level>`` of the h-day realized volatility."""
        model, forecast = self._forecast(index, returns)
        return self._distribution(model, forecast, index)

    def _distribution(self, model: Any, forecast: Any, index: pd.Index) -> dict[str, Any]:
        sigma = _vol(forecast.variance.iloc[:, 0].reindex(index).to_numpy() / _PCT**2)
        nu = float(self.params_["nu"])
        unit = math.sqrt((nu - 2.0) / nu)  # a t(nu) draw times this has variance 1
        out: dict[str, Any] = {"scale": sigma}
        for level in (0.95, 0.99):
            x = float(student_t.ppf(1.0 - level, nu))
            out[f"var{level:g}"] = -x * unit * sigma
            tail = (nu + x**2) / (nu - 1.0) * float(student_t.pdf(x, nu)) / (1.0 - level)
            out[f"es{level:g}"] = tail * unit * sigma
        if self.horizon == 1:  # |r| = sigma * unit * |t|: exact quantiles
            for lv in self.levels:
                out[f"q{lv:g}"] = float(student_t.ppf((1.0 + lv) / 2.0, nu)) * unit * sigma
            return out
        # Our own seeded draws: arch's default generator is not reproducible run to run.
        generator = np.random.default_rng(self.seed)
        simulated = model.forecast(
            self.params_,
            horizon=self.horizon,
            start=index[0],
            method="simulation",
            simulations=self.simulations,
            rng=lambda size: generator.standard_t(nu, size) * unit,
            reindex=False,
        )
        paths = simulated.simulations.values / _PCT  # (days, simulations, horizon) returns
        realized = np.sqrt(np.mean(paths**2, axis=2))
        dates = pd.DatetimeIndex(simulated.simulations.index)
        pos = dates.get_indexer(index)
        if (pos < 0).any():  # get_indexer's -1 would silently take the last day's draws
            missing = pd.DatetimeIndex(index)[pos < 0]
            raise ValueError(
                f"{len(missing)} forecast dates have no return to forecast from (first "
                f"{missing[0].date()}): forecast only on trading days of the returns"
            )
        for lv in self.levels:
            out[f"q{lv:g}"] = np.quantile(realized, lv, axis=1)[pos]
        return out


def default_baselines(
    horizon: int, core: HARCore | None = None, levels: Sequence[float] | None = None
) -> list[Any]:
    """Every baseline of the benchmark, in report order; ``core`` is the ensemble's own core
    (``HARCore()`` unless the ensemble's settings name another); with quantile ``levels`` the
    GARCH models also give their distributions (the same point forecasts)."""
    dist = levels is not None
    shown = tuple(levels) if levels is not None else (0.05, 0.25, 0.5, 0.75, 0.95)
    return [
        RandomWalk(horizon),
        EWMA(0.94),
        HAR("rv"),
        HAR("parkinson"),
        LogHARX(),
        core or HARCore(),
        GARCHForecaster(horizon, asymmetric=False, distribution=dist, levels=shown),
        GARCHForecaster(horizon, asymmetric=True, distribution=dist, levels=shown),
    ]
