"""Hypervolume, normalisation, epoch reduction and hypervolume-over-time on hand-computed cases and pymoo."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from pymoo.indicators.hv import HV

from benchmarks.results import COLUMNS, best_epoch_rows, best_so_far_rows
from plotting.hypervolume import (
    HypervolumeSettings,
    above_baseline_settings,
    add_regret,
    hypervolume_2d,
    hypervolume_over_time,
    hypervolume_trajectory,
    make_grid,
    normalized_points,
    on_grid,
    pareto_front_2d,
    resolve_size_column,
    step_interpolate,
    summarize_over_seeds,
    tied_errors,
)
from plotting.normalize import minmax_normalize, normalize_objectives, quantile_normalize


def rows(**columns) -> pd.DataFrame:
    """A results frame from the given columns; other columns get plausible defaults."""
    n = len(next(iter(columns.values())))
    defaults = dict(
        run_id="run0", kind="weight-sharing", method="random_search", searcher="random_search", search_space="small",
        strategy="sandwich", task="rte", model="m", seed=0, config=[json.dumps({"i": i}) for i in range(n)],
        valid_error=0.5, test_error=np.nan, params=100, param_fraction=0.5, encoder_param_fraction=0.5, macs=1.0,
        mac_fraction=0.5, size_objective="param_fraction", runtime_s=list(range(1, n + 1)), epoch=np.nan,
        pareto=False, valid_metrics="", test_metrics="", precision="", latency_ms=np.nan, latency_fraction=np.nan,
        objectives="",
    )
    data = {c: columns.get(c, defaults[c]) for c in COLUMNS}
    return pd.DataFrame({c: v if isinstance(v, list) else [v] * n for c, v in data.items()})


# --- exact 2-D hypervolume ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "points, ref, expected",
    [
        # (1-0.2)*(1-0.6) + (1-0.5)*(0.6-0.3) = 0.32 + 0.15
        ([(0.2, 0.6), (0.5, 0.3)], (1, 1), 0.47),
        # a dominated point (0.6, 0.7) and a duplicate add nothing
        ([(0.2, 0.6), (0.5, 0.3), (0.6, 0.7), (0.5, 0.3)], (1, 1), 0.47),
        # one point: (1-0.5)*(1-0.5)
        ([(0.5, 0.5)], (1, 1), 0.25),
        # points beyond (or on) the reference point contribute nothing: only (0.2, 0.6) counts -> 0.8*0.4
        ([(0.2, 0.6), (1.2, 0.1), (1.0, 0.05), (0.5, 1.3)], (1, 1), 0.32),
        # ref (2, 2): (2-0.5)*(2-1.5) + (2-1)*(1.5-1) = 0.75 + 0.5
        ([(1.0, 1.0), (0.5, 1.5)], (2, 2), 1.25),
        # three-point staircase with ref (2, 2): 1.75*1 + 1.5*0.5 + 1.25*0.25
        ([(0.25, 1.0), (0.5, 0.5), (0.75, 0.25), (1.0, 0.75)], (2, 2), 2.8125),
        ([], (1, 1), 0.0),
        ([(np.nan, 0.1), (0.5, 0.5)], (1, 1), 0.25),
    ],
)
def test_hypervolume_hand_cases(points, ref, expected):
    assert hypervolume_2d(points, ref) == pytest.approx(expected, abs=1e-12)


def test_hypervolume_matches_pymoo_on_random_fronts():
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(1, 60))
        pts = rng.uniform(0.0, 1.3, size=(n, 2))
        if trial % 2:  # points on a curved front, where many are non-dominated
            x = rng.uniform(0, 1.2, n)
            pts = np.column_stack([x, (1.2 - x) ** 2 + rng.normal(0, 0.02, n)])
        ref = np.array([1.0, 1.1])
        assert hypervolume_2d(pts, ref) == pytest.approx(float(HV(ref_point=ref)(pts)), rel=1e-9, abs=1e-12)


def test_pareto_front_sorted_and_non_dominated():
    front = pareto_front_2d([(0.5, 0.3), (0.2, 0.6), (0.6, 0.7), (0.5, 0.3), (0.2, 0.9)])
    np.testing.assert_allclose(front, [(0.2, 0.6), (0.5, 0.3)])


def test_trajectory_is_stepped_prefix_hypervolume():
    pts = [(0.5, 0.5), (0.6, 0.6), (0.2, 0.6), (1.5, 0.0), (0.5, 0.3)]
    # 0.25; dominated -> 0.25; + (0.2,0.6): 0.8*0.4 + 0.5*0.1 = 0.37; beyond ref -> 0.37; (0.5,0.3) -> 0.47
    np.testing.assert_allclose(hypervolume_trajectory(pts, (1, 1)), [0.25, 0.25, 0.37, 0.37, 0.47])


def test_trajectory_monotone_and_equal_to_prefix_hv_on_random_points():
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 1.1, size=(80, 2))
    traj = hypervolume_trajectory(pts, (1, 1))
    assert np.all(np.diff(traj) >= 0)
    assert traj[-1] > traj[0]
    for i in (0, 10, 45, 79):
        assert traj[i] == pytest.approx(hypervolume_2d(pts[: i + 1], (1, 1)))


# --- normalisation -----------------------------------------------------------------------------------------------


def test_quantile_normalize_is_empirical_cdf():
    # sorted [1, 2, 2, 3]: F(3) = 4/4, F(1) = 1/4, F(2) = 3/4
    np.testing.assert_allclose(quantile_normalize([3, 1, 2, 2]), [1.0, 0.25, 0.75, 0.75])
    np.testing.assert_allclose(quantile_normalize([0, 1.5, 5], reference=[1, 2, 3, 4]), [0.0, 0.25, 1.0])
    # NaN stays NaN and is not part of the reference: [1, 3] -> F(1) = 1/2
    out = quantile_normalize([1, np.nan, 3])
    assert out[0] == 0.5 and np.isnan(out[1]) and out[2] == 1.0


def test_minmax_normalize():
    np.testing.assert_allclose(minmax_normalize([2, 4, 6]), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(minmax_normalize([2, 4, 6], bounds=(0, 10)), [0.2, 0.4, 0.6])
    np.testing.assert_allclose(minmax_normalize([3, 3]), [0.0, 0.0])
    with pytest.raises(ValueError, match="low <= high"):
        minmax_normalize([1, 2], bounds=(2, 1))


def test_normalize_objectives_per_task_and_bad_names():
    frame = pd.DataFrame({"task": ["a", "a", "b", "b"], "x": [1.0, 2.0, 100.0, 300.0]})
    out = normalize_objectives(frame, ["x"], "quantile")
    np.testing.assert_allclose(out["x"], [0.5, 1.0, 0.5, 1.0])
    out = normalize_objectives(frame, ["x"], "minmax")
    np.testing.assert_allclose(out["x"], [0.0, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="valid choices.*minmax.*quantile"):
        normalize_objectives(frame, ["x"], "zscore")
    with pytest.raises(ValueError, match="only used by the 'minmax'"):
        normalize_objectives(frame, ["x"], "quantile", bounds={"x": (0, 1)})


def test_normalized_points_hypervolume_quantile_hand_case():
    frame = rows(valid_error=[0.1, 0.2, 0.3, 0.4], param_fraction=[1.0, 0.5, 0.25, 0.75])
    points = normalized_points(frame, HypervolumeSettings())
    # errors -> [1/4, 2/4, 3/4, 4/4]; sizes -> [4/4, 2/4, 1/4, 3/4]
    np.testing.assert_allclose(points["hv_error"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(points["hv_size"], [1.0, 0.5, 0.25, 0.75])
    traj = hypervolume_over_time(frame, HypervolumeSettings())
    # 1.75*1; + 1.5*0.5; + 1.25*0.25; the last point is dominated (see the hand case above)
    np.testing.assert_allclose(traj["hypervolume"], [1.75, 2.5, 2.8125, 2.8125])
    np.testing.assert_array_equal(traj["evaluation"], [1, 2, 3, 4])


def test_minmax_settings_use_user_reference_point_and_bounds():
    frame = rows(valid_error=[0.2, 0.5], param_fraction=[0.6, 0.3])  # bounds (0, 1): identity -> 0.47
    settings = HypervolumeSettings("minmax", (1.0, 1.0), bounds={"valid_error": (0, 1), "param_fraction": (0, 1)})
    assert hypervolume_over_time(frame, settings)["hypervolume"].iloc[-1] == pytest.approx(0.47)
    with pytest.raises(ValueError, match="valid choices"):
        HypervolumeSettings("rank")


def test_above_baseline_hypervolume_credits_only_errors_below_each_tasks_baseline():
    # rte, baseline 0.4: errors / 0.4 -> 0.75 (size 1: no area), 0.375 (size 0.5), 1.125 (worse: nothing), 0.5
    # (size 0.25): (1 - 0.375) * (1 - 0.5) + (1 - 0.5) * (0.5 - 0.25) = 0.3125 + 0.125
    run = rows(valid_error=[0.3, 0.15, 0.45, 0.2], param_fraction=[1.0, 0.5, 0.2, 0.25])
    # mrpc, baseline 0.2, the same errors: only 0.15 -> 0.75 at size 0.5 counts: 0.25 * 0.5
    other_task = run.assign(task="mrpc", run_id="run1")
    settings = above_baseline_settings({"rte": 0.4, "mrpc": 0.2})
    final = hypervolume_over_time(pd.concat([run, other_task], ignore_index=True), settings).groupby("task").last()
    assert final.loc["rte", "hypervolume"] == pytest.approx(0.4375)
    assert final.loc["mrpc", "hypervolume"] == pytest.approx(0.125)
    # unlike the quantile hypervolume, a run's value does not depend on the other runs of its task
    better = rows(valid_error=[0.01, 0.02], param_fraction=[0.1, 0.05], run_id="run2")
    both = hypervolume_over_time(pd.concat([run, better], ignore_index=True), settings).groupby("run_id").last()
    assert both.loc["run0", "hypervolume"] == pytest.approx(0.4375)
    quantile = hypervolume_over_time(pd.concat([run, better], ignore_index=True)).groupby("run_id").last()
    assert quantile.loc["run0", "hypervolume"] != pytest.approx(hypervolume_over_time(run)["hypervolume"].iloc[-1])
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="baseline error of task 'rte' must be a positive number"):
            above_baseline_settings({"rte": bad})
    with pytest.raises(ValueError, match="only used by the 'minmax'"):
        HypervolumeSettings(task_bounds={"rte": {"valid_error": (0, 1)}})


def test_hypervolume_over_time_orders_rows_by_runtime_and_steps_on_grid():
    frame = rows(valid_error=[0.3, 0.1, 0.4, 0.2], param_fraction=[0.25, 1.0, 0.75, 0.5],
                 runtime_s=[30.0, 10.0, 40.0, 20.0])
    traj = hypervolume_over_time(frame)
    np.testing.assert_allclose(traj["runtime_s"], [10, 20, 30, 40])
    np.testing.assert_allclose(traj["hypervolume"], [1.75, 2.5, 2.8125, 2.8125])
    grid = np.array([5.0, 10.0, 15.0, 40.0, 100.0])
    on = on_grid(traj, grid)
    np.testing.assert_allclose(on["hypervolume"], [0.0, 1.75, 1.75, 2.8125, 2.8125])
    np.testing.assert_allclose(step_interpolate([1, 2], [5, 7], [0.5, 1, 1.5, 3]), [0, 5, 5, 7])


def test_make_grid():
    traj = pd.DataFrame({"runtime_s": [1.0, 10.0, 100.0], "evaluation": [1, 2, 3]})
    np.testing.assert_allclose(make_grid(traj, "runtime_s", num=3), [1, 10, 100])
    np.testing.assert_allclose(make_grid(traj, "runtime_s", num=3, log=False), [1, 50.5, 100])
    np.testing.assert_allclose(make_grid(traj, "evaluation", num=50), [1, 2, 3])
    with pytest.raises(ValueError, match="x must be one of"):
        make_grid(traj, "epoch")


# --- standard-NAS epochs -----------------------------------------------------------------------------------------


def epoch_frame() -> pd.DataFrame:
    a, b = json.dumps({"t": "a"}), json.dumps({"t": "b"})
    return rows(
        kind=["standard"] * 5 + ["weight-sharing"],
        run_id=["s"] * 5 + ["w"],
        config=[a, a, a, b, b, a],
        epoch=[1.0, 2.0, 3.0, 1.0, 2.0, np.nan],
        valid_error=[0.3, 0.2, 0.25, 0.4, 0.4, 0.5],
        runtime_s=[10.0, 20.0, 30.0, 15.0, 25.0, 5.0],
        param_fraction=[0.5, 0.5, 0.5, 0.3, 0.3, 0.9],
    )


def test_best_epoch_rows_keeps_best_validation_epoch_with_its_runtime():
    best = best_epoch_rows(epoch_frame())
    assert list(best.index) == [1, 3, 5]  # trial a: epoch 2; trial b: tie -> earliest epoch; WS row untouched
    assert best.loc[1, "runtime_s"] == 20.0 and best.loc[1, "valid_error"] == 0.2
    assert best.loc[3, "epoch"] == 1.0


def test_best_so_far_rows_and_equivalence_with_all_epoch_rows():
    frame = epoch_frame()
    kept = best_so_far_rows(frame)
    assert list(kept.index) == [0, 1, 3, 5]  # epoch 3 of a and epoch 2 of b do not improve
    settings = HypervolumeSettings("minmax", (1.0, 1.0), bounds={"valid_error": (0, 1), "param_fraction": (0, 1)})
    everything = hypervolume_over_time(frame[frame["run_id"] == "s"], settings)
    reduced = hypervolume_over_time(kept[kept["run_id"] == "s"], settings)
    grid = np.array([12.0, 17.0, 22.0, 40.0])
    np.testing.assert_allclose(on_grid(everything, grid)["hypervolume"], on_grid(reduced, grid)["hypervolume"])
    # trials, not epochs, count as evaluations: a at t=10, b at t=15
    np.testing.assert_array_equal(everything["evaluation"], [1, 2, 2, 2, 2])


# --- size column, aggregation ------------------------------------------------------------------------------------


def test_resolve_size_column():
    frame = rows(valid_error=[0.1, 0.2], size_objective=["mac_fraction", "mac_fraction"])
    assert resolve_size_column(frame) == "mac_fraction"
    assert resolve_size_column(frame, "encoder_param_fraction") == "encoder_param_fraction"
    mixed = rows(valid_error=[0.1, 0.2], size_objective=["mac_fraction", "param_fraction"])
    with pytest.warns(UserWarning, match="different size objectives"):
        assert resolve_size_column(mixed) == "param_fraction"
    with pytest.raises(ValueError, match="param_fraction"):
        resolve_size_column(frame, "latency")


def test_summarize_over_seeds_and_regret():
    frame = pd.DataFrame({"task": ["t"] * 4, "kind": ["standard"] * 4, "method": ["a", "a", "a", "b"],
                          "hypervolume": [1.0, 2.0, 3.0, 5.0]})
    out = summarize_over_seeds(frame).set_index("method")
    assert out.loc["a", "mean"] == 2.0 and out.loc["a", "n"] == 3
    assert out.loc["a", "se"] == pytest.approx(1.0 / math.sqrt(3))
    assert np.isnan(out.loc["b", "se"])  # one seed: no standard error
    np.testing.assert_allclose(add_regret(frame)["regret"], [4.0, 3.0, 2.0, 0.0])


def test_a_task_where_most_rows_share_one_error_is_named_with_its_percentiles():
    # task a: 6 of 10 rows at 0.2 (say the constant predictor); 2 rows below it, 2 above
    a = [0.2] * 6 + [0.1, 0.15, 0.3, 0.25]
    frame = pd.DataFrame({"task": ["a"] * 10 + ["b"] * 4, "valid_error": a + [0.1, 0.2, 0.3, 0.4]})
    assert tied_errors(frame) == [
        "a: 6 of the 10 compared rows (60%) have the same valid_error (0.2), so quantile normalisation maps it to "
        "80% and any row below it to at most 20%: a sub-network one validation example better than that value can "
        "decide the hypervolume ranks there; read them beside the relative performance."]
    # the same numbers under the normalisation they describe
    assert quantile_normalize([0.2, 0.15], a).tolist() == [0.8, 0.2]
    # half tied (3 of 6) is not more than half: no warning; nor when nothing is better than the tied value
    assert tied_errors(frame.iloc[[0, 1, 2, 6, 8, 9]]) == []
    assert tied_errors(frame.iloc[[0, 1, 2, 3, 4, 5, 8, 9]]) == []
    # min-max normalisation has no such jump: no warning
    assert tied_errors(frame, HypervolumeSettings(normalization="minmax")) == []
