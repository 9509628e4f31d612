"""Figures read at a glance: log-time axes with plain, non-overlapping tick labels, legends beside the data instead
of over it, and one colour per method in every figure and report."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb

from plotting.figures import plot_over_x
from plotting.style import method_color, method_colors, new_figure, shade, shared_legend, tidy_log_axis


def visible_labels(fig, axis):
    """(text, window extent) of the tick labels matplotlib draws on ``axis`` (inside the view)."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    low, high = sorted(axis.get_view_interval())
    return [(tick.label1.get_text(), tick.label1.get_window_extent(renderer))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            if tick.label1.get_visible() and tick.label1.get_text() and low <= tick.get_loc() <= high]


def summary(times: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"kind": "weight-sharing", "method": "nsga2", "runtime_s": times,
                         "mean": np.linspace(1, 3, len(times)), "se": np.nan})


@pytest.mark.parametrize("low, high", [(0.03, 0.27), (0.03, 2.0), (11.0, 1800.0), (1.0, 100.0), (5.0, 9.0)])
def test_log_time_axes_have_plain_labels_that_do_not_overlap(low, high):
    fig, (ax,) = new_figure(2.6, 2.2)  # a narrow panel, as in a three-panel figure
    plot_over_x(summary(np.geomspace(low, high, 12)), ax=ax)
    labels = visible_labels(fig, ax.xaxis)
    assert len(labels) >= 2, labels  # a reader can tell the scale
    assert all("10^" not in text and "times" not in text and "$" not in text for text, _ in labels), labels
    for (_, a), (_, b) in itertools.combinations(labels, 2):
        assert not a.overlaps(b), [text for text, _ in labels]
    assert [float(text) for text, _ in labels] == sorted(float(text) for text, _ in labels)


def test_a_log_axis_of_under_a_decade_still_gets_several_labels():
    fig, (ax,) = new_figure(4, 3)
    ax.plot([0.55, 1.8], [0.55, 1.8])
    ax.set_yscale("log")
    tidy_log_axis(ax.yaxis)
    assert [text for text, _ in visible_labels(fig, ax.yaxis)] == ["0.7", "1"]


def test_a_shared_legend_sits_below_the_axes_and_names_each_method_once():
    fig, axes = new_figure(8, 3.5, ncols=2)
    for ax in axes:
        for method in ("nsga2", "morea", "rfp"):
            ax.plot([0, 1], [0, 1], label=method)
        ax.legend()
    shared_legend(fig, axes)
    FigureCanvasAgg(fig).draw()
    assert all(ax.get_legend() is None for ax in axes)
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["nsga2", "morea", "rfp"]
    box = legend.get_window_extent()
    assert all(box.y1 <= ax.get_window_extent().y0 for ax in axes)  # below every axes: it covers no data


def test_every_method_has_one_colour_everywhere_and_variants_shades_of_it():
    searchers = ["random_search", "morea", "local_search", "nsga2", "ehvi", "lsbo", "rsbo", "moasha",
                 "layer-drop", "head-prune", "rfp"]
    assert len({method_color(name) for name in searchers}) == len(searchers)
    alone = method_colors(["nsga2"])
    together = method_colors(searchers + ["custom"])
    assert alone["nsga2"] == together["nsga2"] == method_color("nsga2") == method_color("ws-nsga2")
    variants = method_colors(["nsga2 (kd, small)", "nsga2 (sandwich, small)", "nsga2 (full, small)", "morea"])
    assert variants["nsga2 (full, small)"] == method_color("nsga2")  # the first variant by name: the colour itself
    assert len(set(variants.values())) == 4
    red = np.array(to_rgb(method_color("nsga2")))
    for name in ("nsga2 (kd, small)", "nsga2 (sandwich, small)"):
        other = np.array(to_rgb(variants[name]))
        # a shade: the same hue, mixed towards black or white
        ratio = (other - np.where(other < red, 0, 1)) / (red - np.where(other < red, 0, 1))
        assert np.allclose(ratio, ratio[0], atol=0.02), name
    assert shade("#d62728", 0) == "#d62728" and shade("#d62728", 1) != shade("#d62728", 2)
