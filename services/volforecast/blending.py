"""The shipped forecast distribution: the calibrated ensemble's realized-volatility quantiles
averaged, level by level, with those of a GJR-GARCH-t model fitted on the same training window.

The calibration (``calibration.ForecastCalibration``) turns the ensemble's point forecast into
quantiles by conformal scores; its spread comes from the training window's residuals and moves
with the forecast's level only. A GJR-GARCH-t model's quantiles widen and narrow with the
returns' own recent shocks. The fourth round of the development-period protocol (bench/risk.py;
services/train/README.md "Fourth round") measured their average with ``weight`` on ours
(``SHIPPED_WEIGHT``) below the calibration alone on 16 of 20 walks. Only the quantiles are
averaged: VaR and ES stay the calibration's (their tails were chosen by earlier rounds and pass
their backtests).

``BlendedCalibration.to_dict`` is the calibration's stored form plus a ``"blend"`` entry of
plain numbers (the partner's parameters); a set stored before the blend has none, and reads back
with weight 1: the calibration alone, as it was trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from volforecast.baselines import GARCHForecaster
from volforecast.calibration import SHIPPED_METHOD, CalibrationMethod, ForecastCalibration
from volforecast.ensemble import FloatArray

# The weight on the calibration's quantiles the fourth round chose (bench/risk.py).
SHIPPED_WEIGHT = 0.5
PARTNER = "gjr_garch_t"


def blend_name(method: CalibrationMethod, weight: float) -> str:
    """The name a blended distribution goes by: the calibration method's, and the partner's
    with its weight when the weight on the calibration is below 1."""
    return method.name if weight == 1.0 else f"{method.name}+{PARTNER}(weight={1.0 - weight:g})"


SHIPPED_NAME = blend_name(SHIPPED_METHOD, SHIPPED_WEIGHT)


@dataclass(frozen=True)
class BlendedCalibration:
    """A calibration whose quantiles are averaged with a fitted GJR-GARCH-t model's.

    calibration : the ensemble's calibration (``ForecastCalibration``); its VaR and ES are
        used as they are.
    weight : the weight on the calibration's quantiles, in [0, 1]; 1 means no partner.
    partner_params : the GJR-GARCH-t parameters (arch's names: ``omega``, ``alpha[1]``,
        ``gamma[1]``, ``beta[1]``, ``nu``; returns in percent), None when ``weight`` is 1.
    simulations, seed : the partner's simulated h-day quantiles (h > 1), reproducible.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from volforecast.calibration import ForecastCalibration
    >>> days = pd.bdate_range("2010-01-01", periods=1500)
    >>> r = pd.Series(np.random.default_rng(0).standard_t(5, 1500) * 0.01, index=days)
    >>> realized = r.abs().rolling(5).mean().shift(-5).bfill().to_numpy()
    >>> cal = ForecastCalibration.fit(realized, np.full(1500, 0.01), r, days, 5)
    >>> blend = BlendedCalibration.fit(cal, days[:-5], r, weight=0.5)
    >>> dist = blend.distribution_on([0.01], r, days[-1:])
    >>> bool(dist["q0.05"][0] < dist["q0.5"][0] < dist["q0.95"][0])
    True
    """

    calibration: ForecastCalibration
    weight: float = 1.0
    partner_params: Mapping[str, float] | None = None
    simulations: int = 1000
    seed: int = 42

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"blend weight must be in [0, 1], got {self.weight}")
        if self.weight < 1.0 and self.partner_params is None:
            raise ValueError(f"a blend weight of {self.weight} needs the partner's parameters")

    @classmethod
    def fit(
        cls,
        calibration: ForecastCalibration,
        train_index: pd.DatetimeIndex,
        returns: pd.Series,
        weight: float = SHIPPED_WEIGHT,
    ) -> BlendedCalibration:
        """Fit the partner on the training rows ``train_index`` (dates) and ``returns`` (daily
        log returns by date): it reads the returns through the last row's target window,
        as the ensemble's targets do, and none after."""
        if weight == 1.0:
            return cls(calibration)
        partner = GARCHForecaster(calibration.horizon, asymmetric=True)
        partner.fit(pd.DataFrame(index=train_index), returns)
        params = {str(k): float(v) for k, v in partner.params_.items()}
        if not all(np.isfinite(v) for v in params.values()):
            raise ValueError(
                f"the {PARTNER} fit on the training window gave non-finite parameters {params}; "
                "the window is too short or its returns are degenerate (check the data)"
            )
        return cls(calibration, weight, params)

    def _partner(self) -> GARCHForecaster:
        """The fitted partner, ready to forecast its distribution."""
        return GARCHForecaster.fitted(
            self.partner_params or {}, self.calibration.horizon, True, distribution=True,
            levels=tuple(self.levels), simulations=self.simulations, seed=self.seed,
        )  # fmt: skip

    @property
    def method_name(self) -> str:
        """The calibration's method name, with the blend when there is one."""
        return blend_name(self.calibration.method, self.weight)

    @property
    def levels(self) -> list[float]:
        """The quantile levels of the realized volatility."""
        return list(self.calibration.volatility.log_residual_quantiles)

    @property
    def var_levels(self) -> list[float]:
        """The 1-day VaR and ES levels (the calibration's)."""
        return list(self.calibration.risk_1d.var_multipliers)

    def distribution_on(
        self, forecast: npt.ArrayLike, returns: pd.Series, index: pd.Index
    ) -> dict[str, FloatArray]:
        """``ForecastCalibration.distribution_on`` with the quantiles blended: forecasts made
        on the dates ``index`` (consecutive trading days of ``returns``), reading no return
        after each date."""
        dist = self.calibration.distribution_on(forecast, returns, index)
        if self.weight == 1.0:
            return dist
        # The partner reads returns up to each forecast date only, as the calibration does.
        partner = self._partner().distribution_on(pd.DatetimeIndex(index), returns)
        w = self.weight
        for lv in self.levels:
            key = f"q{lv:g}"
            dist[key] = w * dist[key] + (1.0 - w) * np.asarray(partner[key], dtype=np.float64)
        return dist

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the calibration's (``ForecastCalibration.to_dict``) with this
        method's name and, with a partner, a ``"blend"`` entry."""
        out = self.calibration.to_dict() | {"method": self.method_name}
        if self.weight < 1.0:
            out["blend"] = {
                "model": PARTNER,
                "weight": self.weight,
                "params": dict(self.partner_params or {}),
                "simulations": self.simulations,
                "seed": self.seed,
            }
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BlendedCalibration:
        calibration = ForecastCalibration.from_dict(dict(d))
        blend = d.get("blend")
        if blend is None:  # stored before the blend: the calibration alone
            return cls(calibration)
        if blend.get("model") != PARTNER:
            raise ValueError(
                f"the stored blend's model is {blend.get('model')!r}; this version reads "
                f"{PARTNER!r} only (upgrade volforecast or retrain)"
            )
        return cls(
            calibration,
            float(blend["weight"]),
            {str(k): float(v) for k, v in blend["params"].items()},
            int(blend.get("simulations", 1000)),
            int(blend.get("seed", 42)),
        )


def fit_shipped(
    realized: npt.ArrayLike,
    forecast: npt.ArrayLike,
    returns: pd.Series,
    index: pd.DatetimeIndex,
    settings: Any,
) -> BlendedCalibration:
    """The shipped distribution of one model's out-of-fold forecasts of its training rows
    (dates ``index``): the calibration ``SHIPPED_METHOD`` at ``settings``'s horizon and
    quantile levels, blended with GJR-GARCH-t at ``SHIPPED_WEIGHT``. What ``train`` stores
    and ``evaluate`` scores."""
    levels: Sequence[float] = tuple(settings.quantile_levels)
    calibration = ForecastCalibration.fit(
        realized, forecast, returns, index, settings.horizon, SHIPPED_METHOD, levels
    )
    return BlendedCalibration.fit(calibration, index, returns, SHIPPED_WEIGHT)


def stored_calibration(artifact: Mapping[str, Any]) -> BlendedCalibration | None:
    """The distribution a model pickle carries (key ``"calibration"``); None for sets trained
    before it was stored."""
    d = artifact.get("calibration")
    return None if d is None else BlendedCalibration.from_dict(d)
