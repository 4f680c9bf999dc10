"""volforecast: SPY realized-volatility forecasting with self-monitoring stacked ensembles."""

__version__ = "0.1.0"
