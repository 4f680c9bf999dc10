"""What every file format shares: unknown keys allowed on read (so files written by a newer
version stay readable), range-checked numbers, and date-order checks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1

# Numbers a decision depends on (drift divides by the validation RMSE) are range-checked on
# read and on write: a NaN or a negative RMSE in a baseline is a corrupt file, not a value.
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFinite = Annotated[float, Field(ge=0, allow_inf_nan=False)]
RSquared = Annotated[float, Field(le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(gt=0)]
SHA256_HEX = r"^[0-9a-f]{64}$"


class Record(BaseModel):
    """The base of every file format."""

    model_config = ConfigDict(extra="allow")


def ordered(*pairs: tuple[str, dt.date, dt.date, bool]) -> None:
    """Each (label, first, second, strict): first <= second (first < second when strict)."""
    for label, first, second, strict in pairs:
        if first > second or (strict and first == second):
            raise ValueError(f"dates out of order: {label} ({first} vs {second})")


class Served(BaseModel):
    """added: what a monitoring line and a forecast say about the data and the set they used
    (their first keys)."""

    data_age_days: int | None = Field(
        None,
        description="weekdays from the data's last row to the run's day (--as-of, or today); "
        "none in lines written before it was recorded",
    )
    data_stale: bool = Field(
        False, description="the download failed and the run used the cache (degraded mode)"
    )
    live_since: str | None = Field(
        None, description="when the set became live (deployments.jsonl), if logged"
    )
    deployed_by: str | None = Field(
        None, description="what made it live: train, rollback, promote or recovered"
    )


Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class VarCheck(Record):
    """added: a backtest of one VaR level: the days whose loss exceeded the VaR, out of how
    many, and Kupiec's p-value of "the exceedance rate is the nominal one"."""

    exceedances: int = Field(ge=0)
    days: int = Field(ge=0)
    kupiec_p: Probability
