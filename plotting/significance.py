"""Comparing methods with statistical power: confidence intervals, Friedman's test and critical differences.

A *block* is one repetition of the comparison: the runs of every method on the same task with the same seed (and
the same super-network, for a searcher grid whose run ids name it). Within a block the methods are ranked by final
hypervolume; Friedman's test asks whether the mean ranks differ more than chance allows, and Nemenyi's post-hoc
test (``scikit_posthocs``) which pairs do, drawn as a critical-difference diagram. Only complete blocks count (every
compared method ran in them). Confidence intervals of means use Student's t over the runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from plotting.hypervolume import EVALUATION, step_interpolate

CONFIDENCE = 0.95
ALPHA = 0.05
MIN_BLOCKS = 5  # fewer complete blocks than this: no test (and the report says so)


def confidence_interval(values: Sequence[float], level: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t confidence interval of the mean; NaN bounds for fewer than two values."""
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
    return mean, mean - half, mean + half


def block_of(run_id: str, method: str) -> str:
    """The block a run belongs to: its run id without the method's name (``ws-sandwich-nsga2-small-mrpc-seed3`` ->
    ``ws-sandwich-*-small-mrpc-seed3``), so the runs of all methods with the same task, seed and super-network meet."""
    return re.sub(rf"(^|-){re.escape(method)}(-|$)", r"\1*\2", str(run_id), count=1)


def hypervolume_at(trajectories: pd.DataFrame, evaluations: int | None = None) -> pd.DataFrame:
    """Per run (task, method, run id, block): the hypervolume after ``evaluations`` evaluations (None: at the end)."""
    records = []
    for (task, run_id), run in trajectories.groupby(["task", "run_id"], sort=True):
        run = run.sort_values(EVALUATION, kind="stable")
        method = str(run["method"].iloc[0])
        if evaluations is None:
            value = float(run["hypervolume"].iloc[-1])
        else:
            value = float(step_interpolate(run[EVALUATION].to_numpy(), run["hypervolume"].to_numpy(),
                                           np.array([evaluations]))[0])
        records.append({"task": task, "method": method, "run_id": run_id, "block": f"{task}/{block_of(run_id, method)}",
                        "hypervolume": value})
    return pd.DataFrame.from_records(records, columns=["task", "method", "run_id", "block", "hypervolume"])


def block_table(values: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Blocks x methods of hypervolumes, complete blocks only (a block lacking a method is dropped)."""
    table = values.pivot_table(index="block", columns="method", values="hypervolume", aggfunc="mean")
    if methods is not None:
        table = table.reindex(columns=list(methods))
    return table.dropna(axis=0, how="any")


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's test over complete blocks, the methods' mean ranks (1 = largest hypervolume) and Nemenyi's
    pairwise p-values."""

    blocks: int
    statistic: float
    p_value: float
    mean_ranks: pd.Series
    pairwise_p: pd.DataFrame

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def different_pairs(self, alpha: float = ALPHA) -> list[tuple[str, str]]:
        """Pairs of methods whose ranks differ significantly (Nemenyi), better first; none unless Friedman's test
        is significant (a post-hoc test only follows a significant omnibus test)."""
        if not self.p_value < alpha:
            return []
        pairs = []
        names = list(self.mean_ranks.sort_values().index)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if self.pairwise_p.loc[a, b] < alpha:
                    pairs.append((a, b))
        return pairs


def friedman(table: pd.DataFrame) -> FriedmanResult | None:
    """Friedman's test and Nemenyi's post-hoc test on a blocks x methods table (larger is better); None with fewer
    than :data:`MIN_BLOCKS` blocks or two methods."""
    import scikit_posthocs as sp

    if table.shape[0] < MIN_BLOCKS or table.shape[1] < 2:
        return None
    ranks = table.rank(axis=1, ascending=False, method="average")
    if table.shape[1] == 2:  # Friedman's test needs three groups; two are Wilcoxon's signed-rank test
        statistic, p_value = stats.wilcoxon(table.iloc[:, 0], table.iloc[:, 1], zero_method="zsplit")
    else:
        statistic, p_value = stats.friedmanchisquare(*(table[column] for column in table.columns))
    pairwise = sp.posthoc_nemenyi_friedman(-table.to_numpy())  # its ranks: ascending, so negate "larger is better"
    pairwise.index = pairwise.columns = list(table.columns)
    return FriedmanResult(blocks=int(table.shape[0]), statistic=float(statistic), p_value=float(p_value),
                          mean_ranks=ranks.mean(axis=0), pairwise_p=pairwise)


def critical_difference_figure(result: FriedmanResult, title: str, colors: dict[str, str] | None = None):
    """A critical-difference diagram of ``result`` (methods joined by a bar do not differ significantly)."""
    import scikit_posthocs as sp

    from plotting.style import new_figure

    figure, axes = new_figure(7.5, 0.45 * len(result.mean_ranks) + 1.4)
    palette = {method: color for method, color in (colors or {}).items() if method in result.mean_ranks.index}
    sp.critical_difference_diagram(result.mean_ranks, result.pairwise_p, ax=axes[0], alpha=ALPHA,
                                   color_palette=palette or None)
    axes[0].set_title(f"{title}\nFriedman p = {result.p_value:.2g}, {result.blocks} blocks", fontsize=9)
    return figure
