"""volforecast: realized-volatility forecasting with self-monitoring stacked ensembles.

The library in three lines (the README's example; ``volforecast.forecaster`` documents each)::

    import volforecast as vf
    market = vf.read_market("../shared/data", symbol="SPY")   # or vf.sample_market() offline
    forecast = vf.VolForecaster(horizon=5).fit(market).predict(market)

``vf.load_models("models")`` reads the set ``volforecast train`` wrote: ``.model_a`` and
``.model_b`` forecast the same way.

The names below are imported on first use, not with the package: the command line must set
OpenMP's waiting policy before xgboost or lightgbm is loaded (``volforecast.runtime``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "LoadedModel",
    "MarketData",
    "ModelSet",
    "VolForecaster",
    "__version__",
    "load_models",
    "read_market",
    "sample_market",
]

if TYPE_CHECKING:
    from volforecast.data import MarketData
    from volforecast.forecaster import (
        LoadedModel,
        ModelSet,
        VolForecaster,
        load_models,
        read_market,
        sample_market,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'volforecast' has no attribute {name!r}")
    from volforecast.runtime import prefer_passive_waiting

    # Before xgboost and lightgbm load: idle OpenMP threads then sleep instead of spin.
    prefer_passive_waiting()
    from volforecast import forecaster

    return getattr(forecaster, name)
