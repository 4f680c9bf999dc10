"""Partial pooling (volforecast.pooling): the panel's slopes, the shrinkage weight and the
pooled core in a walk, on seeded synthetic series."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from volforecast.errors import DataError
from volforecast.pooling import (
    MIN_PANEL_ROWS,
    PanelCore,
    PanelShrinkage,
    PoolData,
    PooledHARCore,
    PoolPriors,
    pool_weight,
    shrunk_coef,
)


def _series(
    seed: int, level: float, n: int = 600
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """A log-variance target 0.6 x1 + 0.3 x2 + noise around the series' own ``level``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = level + x @ np.array([0.6, 0.3]) + rng.normal(0, 0.1, n)
    return pd.bdate_range("2010-01-01", periods=n), x + level / 2, y


def _pool(levels: dict[str, float]) -> PoolData:
    dates, design, target = {}, {}, {}
    for k, (name, level) in enumerate(levels.items()):
        idx, x, y = _series(k, level)
        dates[name], design[name], target[name] = idx.to_numpy(dtype="datetime64[ns]"), x, y
    return PoolData(dates, design, target)


def test_panel_recovers_the_common_slopes_whatever_each_series_level():
    panel = _pool({"A": -9.0, "B": -7.0, "C": -8.0}).panel_at(pd.Timestamp("2020-01-01"))
    assert panel.slopes == pytest.approx([0.6, 0.3], abs=0.02)
    assert panel.series == 3 and panel.rows == 1800


def test_panel_reads_only_rows_up_to_the_cut_and_leaves_out_the_excluded_series():
    pool = _pool({"A": -9.0, "B": -7.0})
    cut = pd.bdate_range("2010-01-01", periods=600)[MIN_PANEL_ROWS + 9]
    panel = pool.panel_at(cut, exclude="B")
    assert panel.series == 1 and panel.rows == MIN_PANEL_ROWS + 10
    with pytest.raises(ValueError, match="no pool series"):
        pool.panel_at(pd.bdate_range("2010-01-01", periods=5)[-1])


def test_pool_weight_moves_from_the_panel_to_the_series_as_its_history_grows():
    assert pool_weight(0, 1000.0) == 0.0
    assert pool_weight(1000, 1000.0) == 0.5
    assert pool_weight(9000, 1000.0) == 0.9


def test_shrunk_coef_keeps_the_series_own_level_when_fully_pooled():
    panel = PanelCore(intercept=0.0, slopes=np.array([0.6, 0.3]), rows=1000, series=3)
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([-8.0, -7.0])
    coef = shrunk_coef(np.zeros(3), panel, x, y, kappa=1e12)  # weight ~0 on own
    fitted = coef[0] + x.mean(axis=0) @ coef[1:]
    assert fitted == pytest.approx(y.mean())  # the panel's line through the series' means
    assert coef[1:] == pytest.approx([0.6, 0.3])


def test_pooled_core_uses_the_panel_of_its_refits_last_training_day():
    idx = pd.bdate_range("2015-01-01", periods=400)
    rng = np.random.default_rng(2)
    rv = np.exp(rng.normal(-4.5, 0.3, (400, 8)))
    cols = ["spy_rv_1d", "spy_rv_5d", "spy_rv_22d", "spy_parkinson_1d", "spy_parkinson_5d",
            "spy_parkinson_22d", "vix_level", "vix_rel_22d"]  # fmt: skip
    train = pd.DataFrame(rv, index=idx, columns=cols).assign(
        target=np.exp(rng.normal(-4.5, 0.3, 400))
    )
    panel = PanelCore(0.0, np.full(8, 0.1), 10_000, 50)
    model = PooledHARCore({idx[-1]: panel}).fit(train, pd.Series(dtype=float))
    assert model.predict(train.iloc[:5], pd.Series(dtype=float)).shape == (5,)
    with pytest.raises(KeyError):
        PooledHARCore({idx[-2]: panel}).fit(train, pd.Series(dtype=float))


def test_pool_priors_panel_is_unchanged_when_later_rows_are_appended_to_the_pool():
    full = _pool({"A": -9.0, "B": -7.0, "C": -8.0})
    cut = 400
    early = PoolData(
        {s: d[:cut] for s, d in full.dates.items()},
        {s: x[:cut] for s, x in full.design.items()},
        {s: y[:cut] for s, y in full.target.items()},
    )
    dates = pd.DatetimeIndex(full.dates["A"][:cut])
    ends = [MIN_PANEL_ROWS, cut - 1]
    late = PoolPriors.for_fits(full, dates, ends, exclude="C")
    now = PoolPriors.for_fits(early, dates, ends, exclude="C")
    for row in ends:
        assert late.panel(row).slopes.tolist() == now.panel(row).slopes.tolist()
        assert late.panel(row).intercept == now.panel(row).intercept
    assert late.panel(cut - 1).symbols == ("A", "B") and late.panel(cut - 1).rows == 2 * cut


def test_pool_priors_keep_the_own_core_when_no_pool_series_is_old_enough_yet():
    pool = _pool({"A": -9.0})
    dates = pd.DatetimeIndex(pool.dates["A"])
    priors = PoolPriors.for_fits(pool, dates, [10, 599])
    assert priors(10) is None and isinstance(priors(599), PanelShrinkage)
    with pytest.raises(DataError, match="no panel to pool with"):
        priors.info("pool.txt", 11)


def test_pool_priors_carry_their_panels_not_the_pool_when_pickled():
    pool = _pool({f"S{k}": -8.0 for k in range(20)})
    dates = pd.DatetimeIndex(pool.dates["S0"])
    priors = PoolPriors.for_fits(pool, dates, [300, 599])
    assert len(pickle.dumps(priors)) < len(pickle.dumps(pool)) / 10


def test_pool_priors_info_names_the_final_fits_panel_and_its_own_weight():
    pool = _pool({"A": -9.0, "B": -7.0})
    dates = pd.DatetimeIndex(pool.dates["A"])
    info = PoolPriors.for_fits(pool, dates, [499], kappa=1000.0).info("pool.txt", 500)
    assert info.series == ["A", "B"] and info.panel_rows == 1000
    assert info.panel_through == dates[499].date()
    assert info.own_weight == pytest.approx(500 / 1500)


def test_panel_shrinkage_is_shrunk_coef_with_its_panel_and_kappa():
    panel = PanelCore(0.1, np.array([0.6, 0.3]), 1000, 3)
    x, y = np.array([[1.0, 2.0], [3.0, 5.0], [0.0, 1.0]]), np.array([-8.0, -7.0, -9.0])
    own = np.array([0.5, 0.2, 0.4])
    expected = shrunk_coef(own, panel, x, y, kappa=10.0)
    assert PanelShrinkage(panel, 10.0)(own, x, y).tolist() == expected.tolist()


def test_panel_at_gives_the_same_panel_for_a_series_outside_the_pool_as_for_none():
    pool = _pool({"A": -9.0, "B": -7.0})
    cut = pd.bdate_range("2010-01-01", periods=600)[400]
    assert pool.panel_at(cut, exclude="ZZZ") is pool.panel_at(cut)
    assert pool.panel_at(cut, exclude="A").symbols == ("B",)


def test_pooled_panels_hold_one_panel_per_fit_of_every_refit_and_nothing_else():
    from volforecast import selection
    from volforecast.config import build_settings
    from volforecast.walkforward import pooled_panels, schedule

    pool = _pool({"A": -9.0, "B": -7.0})
    data = pd.DataFrame(index=pd.bdate_range("2010-01-01", periods=600))
    blocks = schedule(600, 400, 100, purge=5)
    settings = build_settings(data_source="sample", symbol="C")
    panels = pooled_panels(settings, data, blocks, pool)
    ensemble = selection.make_ensemble(settings)
    wanted = {data.index[e] for b in blocks for e in ensemble.fit_ends(b.train_end)}
    assert set(panels) == wanted
    assert all(p is None or p.symbols == ("A", "B") for p in panels.values())


def test_pooled_core_keeps_its_own_core_when_its_refit_has_no_panel():
    from volforecast.baselines import HARCore

    idx = pd.bdate_range("2015-01-01", periods=400)
    rng = np.random.default_rng(2)
    cols = ["spy_rv_1d", "spy_rv_5d", "spy_rv_22d", "spy_parkinson_1d", "spy_parkinson_5d",
            "spy_parkinson_22d", "vix_level", "vix_rel_22d"]  # fmt: skip
    train = pd.DataFrame(np.exp(rng.normal(-4.5, 0.3, (400, 8))), index=idx, columns=cols)
    train = train.assign(target=np.exp(rng.normal(-4.5, 0.3, 400)))
    none = pd.Series(dtype=float)
    pooled = PooledHARCore({idx[-1]: None}).fit(train, none)
    own = HARCore(pooled.core, pooled.core_logs, "duan").fit(train, none)
    assert pooled.coef_.tolist() == own.coef_.tolist() and pooled.log_bias_ == own.log_bias_


def test_raw_coef_moves_the_level_by_the_vix_gap_when_anchored():
    # Regressors: one log volatility, the log VIX; target log variance.
    panel = PanelCore(0.0, np.array([0.5, 0.5]), 1000, 3, vix_mean=3.0, vix_column=1,
                      vol_columns=(0,))  # fmt: skip
    x_mean, y_mean = np.array([-2.0, 2.8]), -4.0  # a calm sample: its VIX 0.2 below the long run
    plain = panel.raw_coef(x_mean, y_mean)
    anchored = panel.raw_coef(x_mean, y_mean, anchor=1.0)
    assert plain[0] == pytest.approx(-4.0 - (-1.0 + 1.4))
    # level +0.4, log vol +0.2, VIX to 3.0: intercept -3.6 - (0.5 * -1.8 + 0.5 * 3.0)
    assert anchored[0] == pytest.approx(-3.6 - 0.6)
    assert anchored[1:].tolist() == plain[1:].tolist()
    assert panel.raw_coef(x_mean, y_mean, anchor=0.0).tolist() == plain.tolist()


def test_panel_long_run_vix_counts_each_day_once_and_only_up_to_the_cut():
    idx = pd.bdate_range("2010-01-01", periods=400).to_numpy(dtype="datetime64[ns]")
    vix = np.linspace(2.0, 4.0, 400)
    noise = np.random.default_rng(4).normal(size=(400, 2))
    design = {s: np.column_stack([noise[:, k], vix + noise[:, 1 - k]]) for k, s in enumerate("AB")}
    # B holds only the later half of the days; the long-run mean must not weigh them twice.
    pool = PoolData({"A": idx, "B": idx[200:]}, {"A": design["A"], "B": design["B"][200:]},
                    {"A": noise[:, 0], "B": noise[200:, 1]},
                    vix_column=1, vol_columns=(0,))  # fmt: skip
    panel = pool.panel_at(pd.Timestamp(idx[299]))
    assert panel.vix_mean == pytest.approx(design["A"][:300, 1].mean())
    assert panel.vix_column == 1 and panel.vol_columns == (0,)
