"""Market data: download (yfinance), read (CSV), or load the offline sample; validate and align.

This is the only module that talks to yfinance. Every source yields the same thing: a
``MarketData`` whose frame is indexed by SPY trading day with SPY OHLC, adjusted close and the
VIX close, validated so that later code can trust it.

Alignment rule (VIX on SPY days): VIX rows on days SPY did not trade (holidays on which CBOE
published a value) are dropped; a SPY day without a VIX row takes the previous VIX close, for at
most ``MAX_VIX_FILL`` consecutive days (a past value, so no look-ahead). Days before the first
VIX value are dropped. Anything longer is a data error.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import pandas as pd

from volforecast import atomic
from volforecast.config import DataSource, Settings
from volforecast.errors import DataError, StorageError

log = logging.getLogger(__name__)


def price_file(symbol: str) -> str:
    """File name of a symbol's daily prices in the data directory (``spy_daily.csv`` for SPY)."""
    return f"{symbol.lower()}_daily.csv"


VIX_FILE = price_file("VIX")
PRICE_COLUMNS = ("open", "high", "low", "close")
MAX_VIX_FILL = 3
# Largest believable one-day factor of an adjusted close (and of high over low). The worst day
# of US equity indices (19 Oct 1987) was x0.80, of the VIX x2.15 (5 Feb 2018); x3 leaves room
# for any fund or index while catching unit slips, typos and ticks like 1e-300.
MAX_DAILY_FACTOR = 3.0
ISO_TIMESTAMP = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
UTC_OFFSET = r"[T ][\d:.]+(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})$"
MAX_OFFSET_SPREAD_MINUTES = 60
# Longest believable gap between two consecutive rows, in calendar days. US markets closed for
# at most four trading days since the 1930s (after 11 September 2001: a 7-day gap); the longest
# gap in the 189 shipped series is 24 days (BRK-A, thinly traded in 1993). A longer one is a
# hole in the file (a missing year would be read as one day's return).
MAX_GAP_DAYS = 31
# Yahoo serves today's bar while the market is open, with the price of the moment as its
# close: it is dropped until this long after the 16:00 New York close.
CLOSE_NY = dt.time(16, 15)
NEW_YORK = "America/New_York"
# Re-download this many calendar days before the last cached row: Yahoo revises recent rows.
REFRESH_OVERLAP_DAYS = 10


@dataclass(frozen=True)
class MarketData:
    """SPY and VIX on SPY trading days.

    ``frame`` columns: spy_open, spy_high, spy_low, spy_close, spy_adj_close, vix_close;
    index: ``date`` (midnight timestamps, sorted, unique).
    """

    frame: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)
    # The download failed and the cache was used instead (degraded mode: ``check_freshness``).
    stale: bool = False
    # Rows the bad-rows policy repaired (``apply_bad_rows``), one line each.
    repaired: list[str] = field(default_factory=list)

    @property
    def first_date(self) -> dt.date:
        return pd.Timestamp(self.frame.index[0]).date()

    @property
    def last_date(self) -> dt.date:
        return pd.Timestamp(self.frame.index[-1]).date()

    def until(self, as_of: dt.date) -> MarketData:
        """The rows dated on or before ``as_of``: what loading with ``--as-of`` gives."""
        frame = self.frame.loc[self.frame.index <= pd.Timestamp(as_of)]
        if frame.empty:
            raise DataError(f"{self.source}: no rows on or before {as_of}.")
        return MarketData(
            frame=frame,
            source=self.source,
            notes=list(self.notes),
            stale=self.stale,
            repaired=[r for r in self.repaired if r[:10] <= as_of.isoformat()],
        )

    def age_days(self, today: dt.date) -> int:
        """Weekdays after the last row up to ``today``: 0 when the data holds today's bar, 2
        on a Wednesday when it ends on Monday (market holidays count as days here)."""
        start = self.last_date + dt.timedelta(days=1)
        return int(np.busday_count(start, today + dt.timedelta(days=1))) if start <= today else 0


# --------------------------------------------------------------------------- validation


def validate_prices(
    df: pd.DataFrame, origin: str, *, require_ohlc: bool = True, today: dt.date | None = None
) -> pd.DataFrame:
    """Check a raw price table and return it indexed by date.

    ``df`` has a ``date`` column plus price columns. ``origin`` names the file or source in
    messages. Raises DataError naming the row and the fix.
    """
    if df.empty:
        raise DataError(f"{origin}: no rows. Fix: check the file or download, or widen --start.")
    df = df.rename(columns=lambda c: str(c).strip().lower().replace(" ", "_"))
    needed = ["date", *(PRICE_COLUMNS if require_ohlc else ("close",))]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}. "
            "Fix: the header must be date,open,high,low,close[,adj_close][,volume]."
        )
    dates = parse_dates(df["date"], origin)
    dup = dates.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{origin}: row {i + 2} repeats the date {dates.iloc[i].date()}. "
            "Fix: remove duplicate rows (keep one row per trading day)."
        )
    backwards = dates.diff() < pd.Timedelta(0)
    if backwards.any():
        i = int(np.flatnonzero(backwards.to_numpy())[0])
        raise DataError(
            f"{origin}: row {i + 2} ({dates.iloc[i].date()}) comes after "
            f"{dates.iloc[i - 1].date()}; rows are not sorted. Fix: sort the file by date."
        )
    if today is not None:
        future = dates > pd.Timestamp(today) + pd.Timedelta(days=1)
        if future.any():
            i = int(np.flatnonzero(future.to_numpy())[0])
            raise DataError(
                f"{origin}: row {i + 2} is dated {dates.iloc[i].date()}, after today ({today}). "
                "Fix: correct the dates (or the machine clock)."
            )
    value_cols = [c for c in (*PRICE_COLUMNS, "adj_close") if c in df.columns]
    if not require_ohlc:
        value_cols = [c for c in value_cols if c in ("close", "adj_close")]
    out = pd.DataFrame(index=pd.DatetimeIndex(dates, name="date"))
    for col in value_cols:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        nan = np.isnan(values)
        if nan.any():
            i = int(np.flatnonzero(nan)[0])
            raise DataError(
                f"{origin}: row {i + 2} ({dates.iloc[i].date()}) has no numeric {col} "
                f"({df[col].iloc[i]!r}). Fix: fill or remove that row."
            )
        infinite = ~np.isfinite(values)
        if infinite.any():
            i = int(np.flatnonzero(infinite)[0])
            raise DataError(
                f"{origin}: row {i + 2} ({dates.iloc[i].date()}) has a non-finite {col} "
                f"({df[col].iloc[i]!r}). Fix: correct or remove that row."
            )
        nonpos = values <= 0
        if nonpos.any():
            i = int(np.flatnonzero(nonpos)[0])
            raise DataError(
                f"{origin}: row {i + 2} ({dates.iloc[i].date()}) has a non-positive {col} "
                f"({values[i]}). Fix: prices must be > 0; correct or remove that row."
            )
        out[col] = values
    if "high" in out and "low" in out:
        inverted = (out["high"] < out["low"]).to_numpy()
        if inverted.any():
            i = int(np.flatnonzero(inverted)[0])
            raise DataError(
                f"{origin}: row {i + 2} ({out.index[i].date()}) has high {out['high'].iloc[i]} "
                f"below low {out['low'].iloc[i]}. Fix: correct or remove that row."
            )
    if "adj_close" not in out:
        out["adj_close"] = out["close"]
    _check_plausible(out, origin)
    return out


def check_gaps(prices: pd.DataFrame, origin: str) -> None:
    """DataError when two consecutive rows of ``prices`` (validated, date-indexed) are more
    than ``MAX_GAP_DAYS`` calendar days apart."""
    dates = pd.Series(prices.index)
    gaps = dates.diff() > pd.Timedelta(days=MAX_GAP_DAYS)
    if gaps.any():
        i = int(np.flatnonzero(gaps.to_numpy())[0])
        raise DataError(
            f"{origin}: {(dates.iloc[i] - dates.iloc[i - 1]).days} calendar days between "
            f"{dates.iloc[i - 1].date()} and {dates.iloc[i].date()}; more than {MAX_GAP_DAYS} is a "
            "hole in the history, which would be read as one day's return. Fix: restore the "
            f"missing rows, or move --start after {dates.iloc[i].date()}."
        )


def parse_dates(raw: pd.Series, origin: str) -> pd.Series:
    """ISO ``YYYY-MM-DD`` dates (a time and UTC offset may follow, as in Yahoo exports).

    The trading day is the calendar date written in the row: the exchange's local date. Offsets
    more than an hour apart (more than a daylight-saving change) mean rows from different
    clocks, which would shift days against each other.
    """
    text = raw.astype(str).str.strip()
    dates = pd.to_datetime(text.str[:10], format="%Y-%m-%d", errors="coerce")
    bad = ~text.str.fullmatch(ISO_TIMESTAMP).to_numpy(dtype=bool) | dates.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{origin}: row {i + 2} has an unparsable date {raw.iloc[i]!r}. "
            "Fix: dates must be YYYY-MM-DD (ISO 8601)."
        )
    offsets = text.str.extract(UTC_OFFSET)
    sign = offsets["sign"].map({"+": 1.0, "-": -1.0})
    minutes = sign * (offsets["hours"].astype(float) * 60 + offsets["minutes"].astype(float))
    spread = minutes.to_numpy(dtype=float)
    if (
        np.isfinite(spread).any()
        and np.nanmax(spread) - np.nanmin(spread) > MAX_OFFSET_SPREAD_MINUTES
    ):
        lo, hi = int(np.nanargmin(spread)), int(np.nanargmax(spread))
        raise DataError(
            f"{origin}: mixed time zones: row {lo + 2} has {raw.iloc[lo]!r} and row {hi + 2} "
            f"has {raw.iloc[hi]!r}. Fix: export every row with the exchange's own time zone "
            "(or plain YYYY-MM-DD dates)."
        )
    return dates


def _check_plausible(prices: pd.DataFrame, origin: str) -> None:
    """Reject close-to-close moves no traded security makes in one day: typing errors, unit
    slips, unadjusted splits. Adjusted closes (splits and dividends taken out) may change by at
    most a factor of ``MAX_DAILY_FACTOR`` from one row to the next. (Bad intraday ticks are the
    bad-rows policy's: ``apply_bad_rows``.)
    """
    bound = np.log(MAX_DAILY_FACTOR)
    adj = prices["adj_close"].to_numpy(dtype=float)
    moves = np.abs(np.diff(np.log(adj)))
    if (moves > bound).any():
        i = int(np.flatnonzero(moves > bound)[0]) + 1
        raise DataError(
            f"{origin}: row {i + 2} ({prices.index[i].date()}) moves adj_close from {adj[i - 1]:g} "
            f"to {adj[i]:g} in one day, beyond the plausible factor of {MAX_DAILY_FACTOR:g}. "
            "Fix: correct that row (splits must be reflected in adj_close)."
        )


def glitches(prices: pd.DataFrame) -> pd.DataFrame:
    """Which open, high and low values are glitches: more than ``MAX_DAILY_FACTOR`` away from
    every close that could confirm them (the row's own close and the previous row's).

    A real move is confirmed by the closes around it (AIG on 2008-09-16: a high 4.2 times its
    low, between closes of 77.12 and 60.76, so its extremes are within 3 times of a close and
    the row is kept as it is); a bad tick is not (LOW on 2009-02-05: a high of 49.06 between
    closes of 14.92 and 15.26). The close itself is checked by the adjusted-close rule.
    """
    close = prices["close"]
    previous = close.shift(1).fillna(close)
    top = np.maximum(close, previous) * MAX_DAILY_FACTOR
    bottom = np.minimum(close, previous) / MAX_DAILY_FACTOR
    return pd.DataFrame(
        {c: (prices[c] > top) | (prices[c] < bottom) for c in ("open", "high", "low")},
        index=prices.index,
    )


def apply_bad_rows(
    prices: pd.DataFrame, origin: str, policy: str
) -> tuple[pd.DataFrame, list[str]]:
    """The bad-rows policy on a validated price table (``--bad-rows``, models/README.md):

    - ``fail``: a glitch (``glitches``) is a DataError naming the row (exit 3);
    - ``repair``: a glitched high or low is replaced by the larger or smaller of the row's and
      the previous row's close (the range the closes prove), a glitched open is clipped into
      the repaired range; the close, the day and the symbol are kept. Returns the repaired
      table and one line per repaired row, each also logged as a warning.
    """
    bad = glitches(prices)
    rows = bad.any(axis=1)
    if not rows.any():
        return prices, []
    if policy == "fail":
        i = int(np.flatnonzero(rows.to_numpy())[0])
        fields = ", ".join(f"{c} {prices[c].iloc[i]:g}" for c in bad.columns if bad[c].iloc[i])
        raise DataError(
            f"{origin}: row {i + 2} ({prices.index[i].date()}) has {fields}, more than "
            f"{MAX_DAILY_FACTOR:g} times away from its close {prices['close'].iloc[i]:g} and the "
            "previous close: a bad tick. Fix: correct that row, or pass --bad-rows repair "
            "(VOLF_BAD_ROWS) to repair such rows from the closes."
        )
    out = prices.copy()
    close = out["close"]
    previous = close.shift(1).fillna(close)
    hi_ref, lo_ref = np.maximum(close, previous), np.minimum(close, previous)
    out.loc[bad["high"], "high"] = hi_ref[bad["high"]]
    out.loc[bad["low"], "low"] = lo_ref[bad["low"]]
    out["high"] = np.maximum(out["high"], close)  # a repaired range still holds the close
    out["low"] = np.minimum(out["low"], close)
    out.loc[bad["open"], "open"] = np.clip(
        out.loc[bad["open"], "open"], out.loc[bad["open"], "low"], out.loc[bad["open"], "high"]
    )
    notes = []
    for row in np.flatnonzero(rows.to_numpy()):
        i = int(row)
        before = prices.iloc[i][["open", "high", "low"]].to_numpy(dtype=float)
        after = out.iloc[i][["open", "high", "low"]].to_numpy(dtype=float)
        changed = ", ".join(
            f"{c} {b:g} -> {a:g}"
            for c, b, a in zip(("open", "high", "low"), before, after, strict=True)
            if b != a
        )
        # The date first: MarketData.until keeps the repairs of the rows it keeps.
        notes.append(f"{prices.index[i].date()} {origin}: {changed}")
        log.warning("repaired a bad tick (--bad-rows repair): %s", notes[-1])
    return out, notes


def read_price_csv(
    path: Path, *, require_ohlc: bool = True, today: dt.date | None = None
) -> pd.DataFrame:
    """Read and validate one daily price CSV (the format of ``spy_daily.csv``)."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Fix: put {path.name} in {path.parent} "
            "(or choose another --data-dir / --source)."
        )
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}). Fix: restore the file.") from exc
    except OSError as exc:
        raise DataError(
            f"{path}: cannot be read ({exc.strerror or exc}). Fix: let the user running "
            "volforecast read it (permissions, mount) or choose another --data-dir."
        ) from exc
    return validate_prices(raw, str(path), require_ohlc=require_ohlc, today=today)


def align(spy: pd.DataFrame, vix: pd.DataFrame, origin: str = "VIX") -> pd.DataFrame:
    """Put VIX on SPY trading days by the rule in the module docstring."""
    if vix.empty:
        raise DataError(
            f"{origin}: no VIX rows in the period. Fix: check the VIX file or download."
        )
    first_vix = vix.index[0]
    spy = spy.loc[spy.index >= first_vix]
    if spy.empty:
        raise DataError(
            f"{origin}: VIX starts on {first_vix.date()}, after the last SPY row. "
            "Fix: provide VIX history that overlaps SPY."
        )
    close = vix["close"].reindex(spy.index)
    gap_runs = close.isna().astype(int).groupby(close.notna().cumsum()).cumsum()
    if (gap_runs > MAX_VIX_FILL).any():
        where = gap_runs[gap_runs > MAX_VIX_FILL].index[0]
        raise DataError(
            f"{origin}: no VIX value for more than {MAX_VIX_FILL} consecutive SPY trading days "
            f"(around {where.date()}). Fix: complete the VIX history."
        )
    frame = pd.DataFrame(
        {
            "spy_open": spy["open"],
            "spy_high": spy["high"],
            "spy_low": spy["low"],
            "spy_close": spy["close"],
            "spy_adj_close": spy["adj_close"],
            "vix_close": close.ffill(),
        },
        index=spy.index,
    )
    return frame


def _restrict(frame: pd.DataFrame, start: dt.date | None, as_of: dt.date | None) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= frame.index >= pd.Timestamp(start)
    if as_of is not None:
        mask &= frame.index <= pd.Timestamp(as_of)
    return frame.loc[mask]


# --------------------------------------------------------------------------- sources


SAMPLE_ORIGIN = "sample (arch: S&P 500 index 1999–2018, VIX 2014–2019)"


def load_sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The offline sample shipped by ``arch``: ^GSPC daily OHLCV 1999–2018, VIX close 2014–2019.

    Index data, not SPY: a way to try the system without a network, not a production source.
    """
    from arch.data import sp500, vix

    spx = sp500.load().reset_index()
    spx.columns = ["date", "open", "high", "low", "close", "adj_close", "volume"]
    v = vix.load().reset_index()
    v.columns = ["date", "close"]
    # arch's VIX series carries NaN rows on US market holidays; they are not observations.
    v = v.dropna(subset=["close"])
    spy = validate_prices(spx, "arch sample S&P 500")
    vx = validate_prices(v, "arch sample VIX", require_ohlc=False)
    return spy, vx


class Downloader(Protocol):
    """Fetches daily bars for one ticker as a raw frame with a ``date`` column."""

    def __call__(self, ticker: str, start: dt.date, end: dt.date | None) -> pd.DataFrame: ...


class YahooDownloader:
    """yfinance with retries: empty answers and rate limits are retried with backoff."""

    def __init__(
        self,
        cache_dir: Path,
        retries: int = 4,
        backoff: float = 5.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep or time.sleep

    def __call__(self, ticker: str, start: dt.date, end: dt.date | None) -> pd.DataFrame:
        import yfinance as yf

        # yfinance keeps a timezone cache under the home directory by default, which is
        # read-only (or absent) in containers and cron environments.
        tz_dir = self.cache_dir / ".yfinance-cache"
        try:
            tz_dir.mkdir(parents=True, exist_ok=True)
            yf.set_tz_cache_location(str(tz_dir))
        except OSError:
            yf.set_tz_cache_location(tempfile.mkdtemp(prefix="volf-yf-"))
        last_problem = "no answer"
        for attempt in range(1, self.retries + 1):
            try:
                raw = yf.download(
                    ticker,
                    start=start.isoformat(),
                    end=(end + dt.timedelta(days=1)).isoformat() if end else None,
                    auto_adjust=False,
                    actions=False,
                    progress=False,
                    threads=False,
                )
            except Exception as exc:  # yfinance raises many types, rate limits included
                last_problem = f"{type(exc).__name__}: {exc}"
                raw = None
            if raw is not None and not raw.empty:
                return _flatten_yahoo(raw, ticker)
            if raw is not None:
                last_problem = "an empty table (yfinance reports failures this way)"
            if attempt < self.retries:
                wait = self.backoff * 2 ** (attempt - 1)
                log.warning(
                    "download of %s failed (attempt %d/%d: %s); retrying in %.0fs",
                    ticker,
                    attempt,
                    self.retries,
                    last_problem,
                    wait,
                )
                self.sleep(wait)
        raise DataError(
            f"yahoo: could not download {ticker} after {self.retries} attempts "
            f"(last: {last_problem}). Fix: retry later (Yahoo rate-limits), check the network, "
            "or use --source csv with files in --data-dir."
        )


def _flatten_yahoo(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    df = raw.copy()
    if isinstance(df.columns, pd.MultiIndex):
        # Recent yfinance returns (field, ticker) columns even for one ticker.
        levels = [
            lvl for lvl in range(df.columns.nlevels) if ticker in df.columns.get_level_values(lvl)
        ]
        df.columns = df.columns.droplevel(levels[0]) if levels else df.columns.get_level_values(0)
    df = df.reset_index()
    df = df.rename(columns=lambda c: str(c).strip().lower().replace(" ", "_"))
    if "datetime" in df.columns and "date" not in df.columns:
        df = df.rename(columns={"datetime": "date"})
    keep = [c for c in ("date", "open", "high", "low", "close", "adj_close", "volume") if c in df]
    return df[keep].dropna(subset=[c for c in ("open", "high", "low", "close") if c in keep])


def _write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    out.index = pd.DatetimeIndex(out.index).strftime("%Y-%m-%d")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.replace_file(path, out.to_csv(index_label="date").encode())
    except OSError as exc:
        raise StorageError(
            f"cannot write the download cache {path} ({exc.strerror}). "
            "Fix: make --data-dir writable and check free disk space."
        ) from exc


def drop_unfinished_bar(frame: pd.DataFrame, now: dt.datetime, ticker: str) -> pd.DataFrame:
    """``frame`` without a bar dated today in New York while today's session is not over."""
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(NEW_YORK))
    if frame.empty or frame.index[-1].date() != local.date() or local.time() >= CLOSE_NY:
        return frame
    log.info(
        "%s: dropping the bar of %s, served before the close (%s New York)",
        ticker,
        local.date(),
        local.strftime("%H:%M"),
    )
    return frame.iloc[:-1]


def refresh_cache(
    path: Path,
    ticker: str,
    start: dt.date,
    download: Downloader,
    *,
    require_ohlc: bool,
    today: dt.date,
    now: dt.datetime | None = None,
) -> tuple[pd.DataFrame, bool]:
    """Bring one cached CSV up to date, downloading only what is new (plus an overlap); returns
    the rows and whether they are the cache alone because the download failed (degraded mode:
    the caller decides whether they are fresh enough, ``check_freshness``).

    Yahoo's adjusted close is re-scaled backwards after each dividend, so the cached adjusted
    closes are multiplied by the factor the overlap reveals before new rows are appended. A bar
    of today served before the close is never cached (``drop_unfinished_bar``).
    """
    now = now or dt.datetime.now(dt.UTC)
    cached: pd.DataFrame | None = None
    if path.is_file():
        try:
            cached = read_price_csv(path, require_ohlc=require_ohlc, today=today)
        except DataError as exc:
            log.warning("ignoring unusable cache %s (%s); downloading the full history", path, exc)
    # The first trading day can fall a few days after --start (holidays, weekends).
    covers_start = (
        cached is not None
        and not cached.empty
        and (cached.index[0] <= pd.Timestamp(start) + pd.Timedelta(days=REFRESH_OVERLAP_DAYS))
    )
    if cached is not None and covers_start:
        since = (cached.index[-1] - pd.Timedelta(days=REFRESH_OVERLAP_DAYS)).date()
        log.info("updating %s from %s (cached through %s)", ticker, since, cached.index[-1].date())
        try:
            raw = download(ticker, since, None)
        except DataError as exc:
            log.warning(
                "%s; using the cache %s, which ends %s",
                str(exc).split(". Fix:", 1)[0],
                path,
                cached.index[-1].date(),
            )
            return cached, True
        fresh = validate_prices(raw, f"yahoo {ticker}", require_ohlc=require_ohlc, today=today)
        fresh = drop_unfinished_bar(fresh, now, ticker)
        overlap = cached.index.intersection(fresh.index)
        if len(overlap):
            factor = float(
                np.median(fresh.loc[overlap, "adj_close"] / cached.loc[overlap, "adj_close"])
            )
            if abs(factor - 1.0) > 1e-6:
                log.info(
                    "%s: new dividend adjustment, rescaling cached adjusted closes by %.6f",
                    ticker,
                    factor,
                )
                cached = cached.assign(adj_close=cached["adj_close"] * factor)
        merged = (
            pd.concat([cached.loc[cached.index < fresh.index[0]], fresh]) if len(fresh) else cached
        )
    else:
        log.info("downloading %s since %s", ticker, start)
        merged = validate_prices(
            download(ticker, start, None), f"yahoo {ticker}", require_ohlc=require_ohlc, today=today
        )
        merged = drop_unfinished_bar(merged, now, ticker)
    _write_csv_atomic(merged, path)
    return cast(pd.DataFrame, merged), False


def check_freshness(market: MarketData, settings: Settings, today: dt.date, purpose: str) -> None:
    """Degraded mode: whether data from the cache alone (the download failed) may be used.

    ``purpose`` "train" needs ``--allow-stale-data``; "monitor" and "predict" accept a cache
    at most ``--max-data-age`` weekdays old. DataError (exit 3) naming the age and the flag
    otherwise; nothing to check when the download worked.
    """
    if not market.stale:
        return
    age = market.age_days(today)
    if purpose == "train":
        if not settings.allow_stale_data:
            raise DataError(
                f"{market.source}: the download failed and the cache ends {market.last_date} "
                f"({age} weekday(s) old); train does not fit models on stale data unless told. "
                "Fix: retry when Yahoo answers, or pass --allow-stale-data "
                "(VOLF_ALLOW_STALE_DATA=true) to train on the cache."
            )
        return
    if age > settings.max_data_age:
        raise DataError(
            f"{market.source}: the download failed and the cache ends {market.last_date}, "
            f"{age} weekday(s) ago, more than --max-data-age {settings.max_data_age}. Fix: retry "
            "when Yahoo answers, or raise --max-data-age (VOLF_MAX_DATA_AGE) to accept it."
        )
    log.warning(
        "running on cached data %d weekday(s) old (the download failed; --max-data-age %d)",
        age,
        settings.max_data_age,
    )


def load_market_data(
    settings: Settings,
    *,
    downloader: Downloader | None = None,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> MarketData:
    """Load SPY and VIX from the configured source, validated and aligned, within [start, as_of].

    From Yahoo, a failed download falls back on the cache (``MarketData.stale``; the command
    decides with ``check_freshness``); a bar of today served before the close is dropped.
    """
    now = now or dt.datetime.now(dt.UTC)
    today = today or now.date()
    stale = False
    source = settings.data_source
    symbol = settings.symbol
    # The implied-volatility input keeps the frame's ``vix_close`` name whatever index it is.
    iv = settings.implied_vol_for(symbol)
    if source is DataSource.SAMPLE:
        if symbol != "SPY" or iv != "VIX":
            raise DataError(
                f"the sample source holds only the S&P 500 and the VIX, not {symbol} / {iv}. "
                "Fix: use --source csv or yahoo for other symbols."
            )
        spy, vix = load_sample()
        origin = SAMPLE_ORIGIN
    elif source is DataSource.CSV:
        spy, vix = read_csv_pair(settings.data_dir, symbol, iv, today)
        origin = f"csv files in {settings.data_dir}"
    else:
        download = downloader or YahooDownloader(settings.data_dir)
        spy, spy_stale = refresh_cache(
            settings.data_dir / price_file(symbol),
            symbol,
            settings.start,
            download,
            require_ohlc=True,
            today=today,
            now=now,
        )
        vix, vix_stale = refresh_cache(
            settings.data_dir / price_file(iv),
            f"^{iv}",
            settings.start,
            download,
            require_ohlc=False,
            today=today,
            now=now,
        )
        stale = spy_stale or vix_stale
        origin = f"yahoo (cached in {settings.data_dir}" + (
            "; download failed, cache only)" if stale else ")"
        )
    return assemble_market(
        spy,
        vix,
        origin,
        symbol,
        iv,
        start=settings.start,
        as_of=settings.as_of,
        bad_rows=settings.bad_rows,
        stale=stale,
    )


def read_csv_pair(
    data_dir: Path, symbol: str, implied_vol: str, today: dt.date | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validated price table of ``symbol`` and the close of ``implied_vol`` from
    ``<data_dir>/<ticker>_daily.csv`` (``--source csv``)."""
    prices = read_price_csv(data_dir / price_file(symbol), today=today)
    iv = read_price_csv(data_dir / price_file(implied_vol), require_ohlc=False, today=today)
    return prices, iv


def assemble_market(
    spy: pd.DataFrame,
    vix: pd.DataFrame,
    origin: str,
    symbol: str,
    iv: str,
    *,
    start: dt.date | None = None,
    as_of: dt.date | None = None,
    bad_rows: str = "repair",
    stale: bool = False,
) -> MarketData:
    """Validated tables of any source made one ``MarketData``: cut to [start, as_of], checked
    for holes (``check_gaps``), bad ticks handled by the ``bad_rows`` policy, the implied
    volatility aligned to the underlying's trading days (``align``)."""
    spy = _restrict(spy, start, as_of)
    vix = _restrict(vix, start, as_of)
    check_gaps(spy, f"{origin} ({symbol})")
    spy, repaired = apply_bad_rows(spy, f"{origin} ({symbol})", bad_rows)
    if spy.empty:
        raise DataError(
            f"{origin}: no {symbol} rows between {start or 'the start'} and {as_of or 'the end'}. "
            "Fix: check --start and --as-of."
        )
    frame = align(spy, vix, origin=f"{origin} ({iv})")
    notes = []
    if frame.index[0] > spy.index[0]:
        notes.append(
            f"{symbol} rows before the first {iv} value ({frame.index[0].date()}) are not used"
        )
    log.info(
        "loaded %d trading days %s..%s from %s",
        len(frame),
        frame.index[0].date(),
        frame.index[-1].date(),
        origin,
    )
    notes += [f"repaired a bad tick: {r}" for r in repaired]
    return MarketData(frame=frame, source=origin, notes=notes, stale=stale, repaired=repaired)
