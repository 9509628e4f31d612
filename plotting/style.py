"""One look for every figure: a colour per method (stable across figures and reports), a line style per kind."""
from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

# Known methods by canonical name (lower case, letters and digits only), with their aliases.
_KNOWN_COLORS: dict[str, str] = {
    "randomsearch": "#1f77b4",
    "morea": "#ff7f0e",
    "localsearch": "#2ca02c",
    "nsga2": "#d62728",
    "ehvi": "#9467bd",
    "lsbo": "#8c564b",
    "rsbo": "#e377c2",
    "moasha": "#7f7f7f",
    "headpruning": "#bcbd22",
    "layerdropping": "#17becf",
    "retrainingfree": "#393b79",
    "distilbert": "#637939",
}
_ALIASES: dict[str, str] = {
    "rs": "randomsearch",
    "random": "randomsearch",
    "rea": "morea",
    "ls": "localsearch",
    "nsgaii": "nsga2",
    "mobo": "ehvi",
    "linearscalarizedbo": "lsbo",
    "randomscalarizedbo": "rsbo",
    "asha": "moasha",
    "michel": "headpruning",
    "headprune": "headpruning",
    "layerdrop": "layerdropping",
    "sajjad": "layerdropping",
    "kwon": "retrainingfree",
    "rfp": "retrainingfree",
    "mask": "retrainingfree",
}
# Colours for methods not listed above, picked by a hash of the name (deterministic across processes).
_EXTRA_COLORS: tuple[str, ...] = (
    "#e6550d", "#31a354", "#756bb1", "#636363", "#de2d26", "#3182bd", "#843c39", "#7b4173",
    "#8ca252", "#bd9e39", "#ad494a", "#a55194", "#6b6ecf", "#d6616b", "#e7969c", "#9c9ede",
)
KIND_LINESTYLES: dict[str, str] = {"weight-sharing": "-", "standard": "--", "baseline": ":"}
KIND_MARKERS: dict[str, str] = {"weight-sharing": "o", "standard": "s", "baseline": "^"}
KIND_SHORT: dict[str, str] = {"weight-sharing": "WS", "standard": "std", "baseline": "baseline"}
AXIS_LABELS: dict[str, str] = {
    "valid_error": "validation error",
    "test_error": "test error",
    "param_fraction": "fraction of parameters",
    "encoder_param_fraction": "fraction of encoder parameters",
    "mac_fraction": "fraction of MACs",
    "latency_fraction": "fraction of the full model's latency (predicted)",
    "latency_ms": "latency (ms, predicted)",
    "runtime_s": "wall-clock time (s)",
    "evaluation": "number of evaluations",
}
FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf")


def canonical_method(method: str) -> str:
    """Lower-case letters and digits of a method name, with a ``ws-`` prefix and a variant suffix (`` (kd, small)``,
    as :func:`plotting.report.label_variants` names a method run with several strategies or search spaces) dropped
    and known aliases resolved.

    A weight-sharing search is named after its searcher (``ws-morea``) and gets that searcher's colour; the kind
    is told apart by the line style, a variant by a shade of its method's colour.
    """
    name = re.sub(r"^ws[-_ ]", "", str(method).lower())
    name = re.sub(r"\s*\([^()]*\)$", "", name) or name
    key = re.sub(r"[^a-z0-9]", "", name)
    return _ALIASES.get(key, key)


def method_color(method: str) -> str:
    """The colour of a method: fixed for known searchers and baselines, else chosen by a stable hash of the name."""
    key = canonical_method(method)
    if key in _KNOWN_COLORS:
        return _KNOWN_COLORS[key]
    return _EXTRA_COLORS[zlib.crc32(key.encode()) % len(_EXTRA_COLORS)]


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    """Colours for a set of methods, the same in every figure and report: :func:`method_color` of each method,
    except that two unknown methods never share a colour, and the variants of one method (``nsga2 (kd, small)``,
    ``nsga2 (sandwich, small)``) get shades of its colour, in the order of their names."""
    colors: dict[str, str] = {}
    used: set[str] = set()
    names = sorted(set(map(str, methods)), key=lambda m: (canonical_method(m) not in _KNOWN_COLORS, m))
    bases: dict[str, str] = {}  # canonical method -> the colour its first name got
    for name in names:
        key = canonical_method(name)
        if key in bases:
            colors[name] = shade(bases[key], sum(canonical_method(other) == key for other in colors))
            continue
        color = method_color(name)
        if key not in _KNOWN_COLORS and color in used:
            free = [c for c in _EXTRA_COLORS if c not in used]
            color = free[0] if free else color
        colors[name] = bases[key] = color
        used.add(color)
    return colors


def shade(color: str, index: int) -> str:
    """The ``index``-th shade of ``color`` (0: itself), alternately darker and lighter, further with each step."""
    if index == 0:
        return color
    step = (index + 1) // 2
    amount = min(0.25 * step, 0.75)
    rgb = np.array(to_rgb(color))
    target = np.zeros(3) if index % 2 else np.ones(3)
    return to_hex(rgb + (target - rgb) * amount)


def color_for(method: str, colors: Mapping[str, str] | None = None) -> str:
    """The colour from ``colors`` if given there, else :func:`method_color`."""
    return colors[method] if colors and method in colors else method_color(method)


def axis_label(column: str) -> str:
    """Human-readable axis label of a results column."""
    return AXIS_LABELS.get(column, column.replace("_", " "))


def method_label(kind: str, method: str, ambiguous: bool) -> str:
    """Legend label: the method, with its kind when the same method name appears for several kinds."""
    return f"{method} ({KIND_SHORT.get(kind, kind)})" if ambiguous else str(method)


def ambiguous_methods(pairs: Iterable[tuple[str, str]]) -> set[str]:
    """Method names that occur with more than one kind among (kind, method) pairs."""
    kinds: dict[str, set[str]] = {}
    for kind, method in pairs:
        kinds.setdefault(str(method), set()).add(str(kind))
    return {m for m, k in kinds.items() if len(k) > 1}


def new_figure(width: float = 6.0, height: float = 4.0, ncols: int = 1, nrows: int = 1) -> tuple[Figure, list]:
    """A figure (no pyplot, so no display backend and no global figure registry) and its flat list of axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.grid(True, alpha=0.3, linewidth=0.6)
    return fig, axes


def plain_number(value: float, _position: object = None) -> str:
    """A tick label as a reader writes it: 0.05, 2, 300, 20000 (no powers of ten)."""
    return f"{value:.10g}"


def tidy_log_axis(axis: Axis) -> None:
    """Log-scale ticks that never overlap: plain numbers at 1, 2, 3, 5 and 7 times the powers of ten when the axis
    spans less than a decade, at 1, 2 and 5 times them up to two decades, at the powers of ten alone otherwise
    (thinned by matplotlib when there are many), and no labels on the minor ticks. Call it after the data are drawn
    (it reads the axis' limits)."""
    low, high = sorted(abs(v) for v in axis.get_view_interval())
    decades = np.log10(high / low) if low > 0 else np.inf
    subs = (1.0, 2.0, 3.0, 5.0, 7.0) if decades < 1 else (1.0, 2.0, 5.0) if decades < 2 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=8))
    axis.set_major_formatter(FuncFormatter(plain_number))
    axis.set_minor_formatter(NullFormatter())


def shared_legend(fig: Figure, axes: Iterable[Axes], columns: int | None = None) -> None:
    """One legend for the figure, below its axes (where it hides no data), with each label once, in ``columns``
    columns (default: as many as the figure's width holds, one per 2 inches): the axes' own legends are removed."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if handles:
        columns = columns or max(1, int(fig.get_figwidth() // 2))
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(columns, len(handles)), fontsize="small", frameon=False)


# no creation date in the files: rebuilding a report from unchanged results leaves its figures byte-identical
UNDATED = {"pdf": {"CreationDate": None}}  # PNG has none; the report writes only PNG and PDF


def save_figure(fig: Figure, stem: str | Path, formats: Iterable[str] = FIGURE_FORMATS, dpi: int = 200) -> list[Path]:
    """Save ``fig`` as ``stem.png``, ``stem.pdf``, ...; return the paths written.

    The layout is computed once, on the first save, and then frozen, so later formats do not pay for it again.
    No creation date is written, so the same figure saves to the same bytes.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, dpi=dpi, metadata=UNDATED.get(fmt))
        fig.set_layout_engine("none")
        paths.append(path)
    return paths
