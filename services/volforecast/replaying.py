"""The production loop replayed over history, and the scores that put its policy on trial.

``replay_period`` runs one period of the loop with the services' own functions
(``training.run_train``, ``monitoring.run_monitor``, ``forecasting.run_predict`` on ``--as-of``
days), never a re-implementation:

* every ``--train-every`` trading days (default 5: weekly) a scheduled training;
* every trading day a monitoring run, then, when the monitor says "retrain now" (and
  ``--no-retrain-on-advice`` is not given), a training; then the day's published forecast:
  ``predict``'s answer, i.e. the model the latest monitoring run recommends.

Four policies are scored on the same days (their definitions, in services/monitor/README.md):
``follow_monitor`` (the loop above), ``always_a`` and ``always_b`` (the same model sets, always
Model A or Model B: the value of the A/B rule), ``scheduled_retrain`` (the scheduled sets only,
no monitoring: Model A, as predict gives without a monitoring run; the value of the retraining
advice). Alarms of the spec's RMSE drift and of a scale-free signal (``drift.relative_qlike_drift``)
are checked against what followed them (``score_replay``).

A period between two scheduled trainings depends on nothing before it (a training sees only
data, and the monitor's rules look only at runs on its own model set), so ``volforecast replay``
runs each one as a piece of work for the engine, in its own scratch models directory.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volforecast import __version__, drift, policy
from volforecast.config import Settings
from volforecast.data import MarketData
from volforecast.ensemble import predict_artifact
from volforecast.errors import (
    ConfigError,
    DataError,
    DataFaultError,
    NoNewDataError,
    VolforecastError,
)
from volforecast.features import TARGET, build_dataset, labeled
from volforecast.forecasting import run_predict
from volforecast.injection import Injection, inject
from volforecast.metrics import qlike, qlike_loss, rmse
from volforecast.monitoring import run_monitor
from volforecast.progress import Progress
from volforecast.schemas import (
    AlarmScore,
    MonitoringRecord,
    PolicyScore,
    ReplayDMTest,
    ReplayReport,
    TrainingRecord,
)
from volforecast.scoring import dm_family
from volforecast.store import CurrentModels, ModelsDirectory
from volforecast.training import run_train

log = logging.getLogger(__name__)

FOLLOW = "follow_monitor"
ALWAYS_A = "always_a"
ALWAYS_B = "always_b"
SCHEDULED = "scheduled_retrain"
POLICIES = (FOLLOW, ALWAYS_A, ALWAYS_B, SCHEDULED)
SPEC_SIGNAL = "rmse_drift"
SCALE_FREE_SIGNAL = "relative_qlike_drift"
# The naive forecast of the scale-free signal: realized volatility of the last 5 days.
NAIVE_FEATURE = "spy_rv_5d"
# The signals whose alarms the replay counts (``fired``), and the data-fault exit.
SIGNALS = ("advice", "spec_rule", "relative_qlike", "feature_drift", "residual_drift",
           "set_age", "lineage", "cusum", "risk", "data_fault", "refused")  # fmt: skip
# Residual drift alarms when the KS test rejects at 1%.
RESIDUAL_DRIFT_ALARM = 0.01
# Feature drift alarms when at least half of the 20 features are flagged.
FEATURE_DRIFT_ALARM = 10
# The risk check alarms when the new rows reject a VaR's exceedance rate at 1%.
RISK_KUPIEC_ALARM = 0.01
# An injected fault is watched this many trading days; the loop starts this many before it
# with a scheduled training.
INJECTION_WINDOW = 15
INJECTION_LEAD = 5
# An alarm is judged by the published forecasts of the next this many trading days.
ALARM_WINDOW_DAYS = 20
# Times of day (UTC) the replay stamps its runs with: train, monitor, advised train, predict.
TRAIN_AT, MONITOR_AT, RETRAIN_AT, PREDICT_AT = (dt.time(21, 0), dt.time(22, 0),
                                                dt.time(22, 15), dt.time(22, 30))  # fmt: skip

DayHook = Callable[[dt.date, Settings, float], None]


@dataclass(frozen=True)
class Period:
    """Trading days from one scheduled training to the next (the first one trains)."""

    index: int
    days: list[dt.date]


@dataclass
class PeriodResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    training: list[TrainingRecord] = field(default_factory=list)
    monitoring: list[MonitoringRecord] = field(default_factory=list)


def periods(days: Sequence[dt.date], every: int) -> list[Period]:
    return [Period(k, list(days[i : i + every])) for k, i in enumerate(range(0, len(days), every))]


def _at(day: dt.date, when: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, when, tzinfo=dt.UTC)


class _SetCache:
    """The loaded set and Model A's validation numbers of each run id seen (sets are
    immutable, so each is read once)."""

    def __init__(self, models: ModelsDirectory) -> None:
        self.models = models
        self.sets: dict[str, CurrentModels] = {}
        self.validation: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def current(self) -> CurrentModels:
        run_id = self.models.current_run_id()
        if run_id not in self.sets:
            loaded = self.models.load_current()
            self.sets[loaded.run_id] = loaded
            return loaded
        return self.sets[run_id]

    def validation_of(self, current: CurrentModels, data: pd.DataFrame) -> tuple[Any, Any, Any]:
        if current.run_id not in self.validation:
            rows = current.validation_rows(data)
            cols = list(current.model_a["feature_cols"])
            self.validation[current.run_id] = (
                rows[TARGET].to_numpy(),
                predict_artifact(current.model_a, rows[cols]),
                rows[NAIVE_FEATURE].to_numpy(),
            )
        return self.validation[current.run_id]


def replay_period(
    settings: Settings,
    market: MarketData,
    period: Period,
    models_dir: Path | None = None,
    on_day: DayHook | None = None,
) -> PeriodResult:
    """One period of the loop (a Dask task): train, then every day monitor, retrain when
    advised, predict. In a scratch models directory unless ``models_dir`` is given."""
    scratch = models_dir or Path(tempfile.mkdtemp(prefix=f"volf-replay-{period.index}-"))
    quiet: Progress = lambda _m: None  # noqa: E731 - the engine reports progress per period
    try:
        base = settings.model_copy(update={"models_dir": scratch})
        models = ModelsDirectory.for_settings(base)
        cache = _SetCache(models)
        result = PeriodResult()
        scheduled: CurrentModels | None = None
        for day in period.days:
            day_settings = base.model_copy(update={"as_of": day})
            upto = market.until(day)
            trained = retrained = False
            if day == period.days[0]:
                record = run_train(day_settings, quiet, now=_at(day, TRAIN_AT), market=upto).record
                result.training.append(record)
                scheduled = cache.current()
                trained = True
            monitoring: MonitoringRecord | None = None
            data_fault = False
            try:
                monitoring = run_monitor(
                    day_settings, quiet, now=_at(day, MONITOR_AT), market=upto
                ).record
                result.monitoring.append(monitoring)
            except NoNewDataError as exc:
                log.warning("%s: no monitoring: %s", day, exc)
            except DataFaultError as exc:  # what cron would see as exit 13
                log.warning("%s: data fault: %s", day, exc)
                data_fault = True
            # The day's features, built once for the signals and the policies' forecasts.
            dataset = build_dataset(upto.frame, settings.horizon)
            row = _signals(monitoring, cache.current(), cache, labeled(dataset))
            row["data_fault"] = data_fault
            if (
                monitoring is not None
                and settings.retrain_on_advice
                and monitoring.retraining.action == "retrain_now"
            ):
                record = run_train(
                    day_settings, quiet, now=_at(day, RETRAIN_AT), market=upto
                ).record
                result.training.append(record)
                retrained = True
            forecast = run_predict(day_settings, quiet, now=_at(day, PREDICT_AT), market=upto)
            if forecast.features_date != day:
                raise DataError(f"{day}: the data has no row for this trading day")
            if on_day is not None:
                on_day(day, day_settings, forecast.forecast_daily)
            current = cache.current()
            assert scheduled is not None
            features = dataset.iloc[[-1]]
            cols = list(current.model_a["feature_cols"])
            row.update(
                date=day,
                **{
                    FOLLOW: forecast.forecast_daily,
                    ALWAYS_A: float(predict_artifact(current.model_a, features[cols])[0]),
                    ALWAYS_B: float(predict_artifact(current.model_b, features[cols])[0]),
                    SCHEDULED: float(predict_artifact(scheduled.model_a, features[cols])[0]),
                },
                model=forecast.model,
                run_id=forecast.run_id,
                trained=trained,
                retrained=retrained,
            )
            result.rows.append(row)
        return result
    finally:
        if models_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _signals(
    monitoring: MonitoringRecord | None,
    current: CurrentModels,
    cache: _SetCache,
    data: pd.DataFrame,
) -> dict[str, Any]:
    """The day's drift signals: the spec's (from the monitoring record) and the scale-free one
    on the same new rows (``data``: the day's labeled rows)."""
    if monitoring is None:
        return {SPEC_SIGNAL: np.nan, SCALE_FREE_SIGNAL: np.nan, "advice": "none"}
    fresh = current.new_rows(data)
    cols = list(current.model_a["feature_cols"])
    y_val, a_val, naive_val = cache.validation_of(current, data)
    scale_free = drift.relative_qlike_drift(
        fresh[TARGET].to_numpy(),
        predict_artifact(current.model_a, fresh[cols]),
        fresh[NAIVE_FEATURE].to_numpy(),
        y_val,
        a_val,
        naive_val,
    )
    return {
        SPEC_SIGNAL: monitoring.drift.model_a_drift_pct,
        SCALE_FREE_SIGNAL: scale_free,
        "advice": monitoring.retraining.action,
        "model_b_win_rate": monitoring.comparison.model_b_win_rate,
        **{f"fired_{k}": v for k, v in fired(monitoring, scale_free).items()},
    }


def fired(record: MonitoringRecord, scale_free: float) -> dict[str, bool]:
    """Which signals alarmed in one monitoring run (``SIGNALS``; ``data_fault`` is the run
    itself failing, exit 13)."""
    r = record.retraining
    risk = record.risk
    spec = r.spec_rule.action if r.spec_rule is not None else r.action
    return {
        "advice": r.action == "retrain_now",
        "spec_rule": spec == "retrain_now",
        "relative_qlike": bool(np.isfinite(scale_free) and scale_free > policy.DRIFT_RETRAIN_PCT),
        "feature_drift": record.feature_drift.n_drifted >= FEATURE_DRIFT_ALARM,
        "residual_drift": record.feature_drift.residual_ks_pvalue is not None
        and record.feature_drift.residual_ks_pvalue < RESIDUAL_DRIFT_ALARM,
        "set_age": r.set_age_days is not None
        and r.max_set_age_days is not None
        and r.set_age_days > r.max_set_age_days,
        "lineage": bool(r.lineage_changed),
        "cusum": r.cusum is not None
        and r.cusum_threshold is not None
        and r.cusum > r.cusum_threshold,
        "risk": risk is not None and min(v.kupiec_p for v in risk.var.values()) < RISK_KUPIEC_ALARM,
    }


def realized_targets(market: MarketData, horizon: int) -> pd.Series:
    """The realized value of each day's forecast, from all the data (the judge, not a model)."""
    return labeled(build_dataset(market.frame, horizon))[TARGET]


def policy_scores(days: pd.DataFrame) -> dict[str, PolicyScore]:
    scored = days.dropna(subset=["realized"])
    return {
        p: PolicyScore(
            rmse=rmse(scored["realized"], scored[p]),
            qlike=qlike(scored["realized"], scored[p]),
            n_days=len(scored),
        )
        for p in POLICIES
    }


def dm_tests(days: pd.DataFrame, horizon: int) -> list[ReplayDMTest]:
    """follow_monitor against each other policy, under both losses (one Holm family per loss;
    a policy whose forecasts equal follow_monitor's has no test), ordered by policy, then loss."""
    scored = days.dropna(subset=["realized"])
    others = list(POLICIES[1:])
    family = dm_family(scored, FOLLOW, others, horizon, skip_identical=True)
    family.sort(key=lambda t: others.index(t.against))  # stable: the loss order stays
    return [
        ReplayDMTest(
            policy=FOLLOW,
            against=t.against,
            loss=t.loss,
            statistic=t.result.statistic,
            p_value=t.result.p_value,
            mean_loss_difference=t.result.mean_loss_difference,
            p_value_holm=t.p_value_holm,
        )
        for t in family
    ]


def bad_periods(days: pd.DataFrame, window: int = ALARM_WINDOW_DAYS) -> pd.Series:
    """Whether the published Model A forecasts of the ``window`` trading days after each day had
    a mean QLIKE above the median of that number over the replay ("worse than usual"). QLIKE
    depends only on realized over forecast variance, so calm and turbulent periods are judged
    alike. NaN where fewer than ``window`` later days are scored."""
    # NaN where nothing is realized yet (and on days of zero realized volatility).
    loss = pd.Series(qlike_loss(days["realized"], days[ALWAYS_A]), index=days.index)
    # Mean over days d+1..d+window: a forward window, shifted so day d is excluded.
    ahead = loss[::-1].rolling(window, min_periods=window).mean()[::-1].shift(-1)
    median = ahead.median()
    return (ahead > median).where(ahead.notna())


def alarm_score(signal: pd.Series, advice: pd.Series | None, bad: pd.Series) -> AlarmScore:
    """How often the signal reached each level, and what followed (see services/monitor/README)."""
    known = bad.notna() & signal.notna()
    level = signal.map(lambda v: policy.drift_level(v) if np.isfinite(v) else "none")

    def rate(mask: pd.Series) -> float | None:
        m = mask & known
        return float(bad[m].astype(bool).mean()) if m.any() else None

    watch_or_more = level.isin(["watch", "retrain"])
    retrain = level == "retrain"
    is_bad = bad.fillna(False).astype(bool) & known
    return AlarmScore(
        days_scored=int(signal.notna().sum()),
        days_watch=int((level == "watch").sum()),
        days_retrain=int(retrain.sum()),
        retrain_now_advised=int((advice == "retrain_now").sum()) if advice is not None else None,
        true_alarm_rate_any=rate(watch_or_more),
        true_alarm_rate_retrain=rate(retrain),
        false_alarm_rate_any=None if rate(watch_or_more) is None else 1 - rate(watch_or_more),  # type: ignore[operator]
        bad_periods_caught=float(watch_or_more[is_bad].mean()) if is_bad.any() else None,
        base_rate=float(bad[known].astype(bool).mean()) if known.any() else None,
    )


def score_replay(
    table: pd.DataFrame, settings: Settings, source: str, now: dt.datetime, duration: float
) -> ReplayReport:
    bad = bad_periods(table)
    b_days = table["model"] == "B"
    scored_b = table.loc[b_days].dropna(subset=["realized"])
    return ReplayReport(
        symbol=settings.symbol,
        data_source=source,
        horizon=settings.horizon,
        replay_start=table.index[0].date(),
        replay_end=table.index[-1].date(),
        train_every=settings.train_every,
        retrain_on_advice=settings.retrain_on_advice,
        days=len(table),
        scheduled_trainings=int(table["trained"].sum()),
        advised_trainings=int(table["retrained"].sum()),
        policies=policy_scores(table),
        diebold_mariano=dm_tests(table, settings.horizon),
        alarms={
            SPEC_SIGNAL: alarm_score(table[SPEC_SIGNAL], table["advice"], bad),
            SCALE_FREE_SIGNAL: alarm_score(table[SCALE_FREE_SIGNAL], None, bad),
        },
        alarm_window_days=ALARM_WINDOW_DAYS,
        model_b_days=int(b_days.sum()),
        model_b_days_rmse={p: rmse(scored_b["realized"], scored_b[p]) for p in (FOLLOW, ALWAYS_A)}
        if len(scored_b)
        else {},
        created_at=now.isoformat(),
        volforecast_version=__version__,
        duration_seconds=round(duration, 1),
    )


def signal_rates(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per signal, the days it alarmed on the replay and that number per year (252 days):
    on a clean replay, its false alarms."""
    years = len(table) / 252.0
    out = {}
    for name in SIGNALS:
        column = "data_fault" if name == "data_fault" else f"fired_{name}"
        if column not in table:
            continue
        days = int(table[column].fillna(False).astype(bool).sum())
        out[name] = {"days": float(days), "per_year": days / years if years else 0.0}
    return out


def replay_injection(
    settings: Settings,
    market: MarketData,
    injection: Injection,
    other: MarketData | None = None,
) -> dict[str, int | None]:
    """The loop around one injected fault (a Dask task): a scheduled training
    ``INJECTION_LEAD`` trading days before it, then every day a monitoring run (and a
    scheduled training every ``--train-every`` days, unless the fault stopped them) until
    ``INJECTION_WINDOW`` days after it. Returns, per signal (``SIGNALS``), the trading days
    from the fault's first day to the first monitoring run on which it alarmed (0: the same
    day), or None when it never did. ``other``: the series a ``wrong_set`` is trained on."""
    all_days = [d.date() for d in market.frame.index]
    first = next((i for i, d in enumerate(all_days) if d >= injection.start), len(all_days))
    if first < INJECTION_LEAD or first + INJECTION_WINDOW >= len(all_days):
        raise ConfigError(
            f"--inject {injection.name}: needs {INJECTION_LEAD} trading days of data before "
            f"the day and {INJECTION_WINDOW} after it ({market.first_date}..{market.last_date})."
        )
    days = all_days[first - INJECTION_LEAD : first + INJECTION_WINDOW + 1]
    seen = inject(market, injection)
    scratch = Path(tempfile.mkdtemp(prefix=f"volf-inject-{injection.kind}-"))
    quiet: Progress = lambda _m: None  # noqa: E731 - the engine reports progress per piece
    delays: dict[str, int | None] = dict.fromkeys(SIGNALS)
    try:
        base = settings.model_copy(update={"models_dir": scratch})
        for k, day in enumerate(days):
            day_settings = base.model_copy(update={"as_of": day})
            view = seen.until(day)
            faulty = day >= injection.start
            model_fault = injection.kind in ("stopped", "wrong_set") and faulty
            alarms: set[str] = set()
            if k % settings.train_every == 0 and not model_fault:
                try:
                    run_train(day_settings, quiet, now=_at(day, TRAIN_AT), market=view)
                except DataFaultError:  # the scheduled training refused the feed (exit 13)
                    alarms.add("data_fault")
            if injection.kind == "wrong_set" and k == INJECTION_LEAD:
                if other is None:
                    raise ConfigError("--inject wrong_set needs the other series' data")
                run_train(
                    day_settings, quiet, now=_at(day, RETRAIN_AT),
                    market=other.until(days[k - 1]),
                )  # fmt: skip
            try:
                record = run_monitor(day_settings, quiet, now=_at(day, MONITOR_AT), market=view)
            except DataFaultError:
                alarms.add("data_fault")
            except NoNewDataError:
                pass
            except VolforecastError:  # the set was refused (another symbol, a bad file)
                alarms.add("refused")
            else:
                alarms |= {name for name, on in fired(record.record, np.nan).items() if on}
            if faulty:
                for name in alarms:
                    if delays.get(name) is None:
                        delays[name] = k - INJECTION_LEAD
        return delays
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
