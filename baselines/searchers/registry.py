"""The one registry of multi-objective searchers, for standard NAS (Tuner) and weight-sharing search (ask/tell).

Every entry builds a Syne Tune :class:`TrialScheduler` minimising all ``metrics`` (validation error and a size
objective) that starts from the caller's initial design (``points_to_evaluate``: largest, smallest and
mid-point sub-network in the paper's protocol) and draws all its randomness from ``random_seed``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from syne_tune.optimizer.scheduler import TrialScheduler

from baselines.searchers.base import MultiObjectiveScheduler
from baselines.searchers.ehvi import EHVISearcher
from baselines.searchers.local_search import MultiObjectiveLocalSearch
from baselines.searchers.moasha import SeededMOASHA
from baselines.searchers.morea import SeededMultiObjectiveRegularizedEvolution
from baselines.searchers.nsga2 import NSGA2Searcher
from baselines.searchers.random_search import MultiObjectiveRandomSearcher
from baselines.searchers.scalarized_bo import LinearScalarizedBOSearcher, RandomScalarizedBOSearcher

DEFAULT_METRICS = ("valid_error", "param_fraction")
MODES = ("standard", "weight-sharing")


@dataclass(frozen=True)
class SchedulerRequest:
    """Everything a factory needs; ``options`` are searcher-specific keyword arguments."""

    config_space: dict[str, Any]
    metrics: list[str]
    points_to_evaluate: list[dict[str, Any]]
    random_seed: int
    max_t: int
    resource_attr: str
    options: dict[str, Any]


@dataclass(frozen=True)
class SearcherSpec:
    """A registry entry: how to build the scheduler, and where it may be used."""

    factory: Callable[[SchedulerRequest], TrialScheduler]
    description: str
    supports_multi_fidelity: bool = False
    standard_nas_only: bool = False


def _single_fidelity(searcher_cls: type, **defaults: Any) -> Callable[[SchedulerRequest], TrialScheduler]:
    """Factory of a :class:`MultiObjectiveScheduler` around ``searcher_cls`` (options override ``defaults``)."""

    def build(req: SchedulerRequest) -> TrialScheduler:
        searcher = searcher_cls(
            req.config_space,
            points_to_evaluate=req.points_to_evaluate,
            random_seed=req.random_seed,
            **{**defaults, **req.options},
        )
        return MultiObjectiveScheduler(
            req.config_space, metrics=req.metrics, do_minimize=True, searcher=searcher, random_seed=req.random_seed
        )

    return build


def _moasha(req: SchedulerRequest) -> TrialScheduler:
    options = {"grace_period": 1, "reduction_factor": 3, "brackets": 1, **req.options}
    return SeededMOASHA(
        req.config_space,
        metrics=req.metrics,
        points_to_evaluate=req.points_to_evaluate,
        random_seed=req.random_seed,
        do_minimize=True,
        time_attr=req.resource_attr,
        max_t=req.max_t,
        **options,
    )


SEARCHERS: dict[str, SearcherSpec] = {
    "random_search": SearcherSpec(
        _single_fidelity(MultiObjectiveRandomSearcher), "uniform random configs from the space's own samplers"
    ),
    "morea": SearcherSpec(
        _single_fidelity(SeededMultiObjectiveRegularizedEvolution, population_size=10, sample_size=5),
        "multi-objective regularised evolution (population 10, sample size 5)",
    ),
    "local_search": SearcherSpec(
        _single_fidelity(MultiObjectiveLocalSearch), "mutate one hyperparameter of a random Pareto-optimal config"
    ),
    "nsga2": SearcherSpec(
        _single_fidelity(NSGA2Searcher, population_size=10), "NSGA-II with pymoo operators (population 10)"
    ),
    "ehvi": SearcherSpec(_single_fidelity(EHVISearcher), "expected hypervolume improvement (BoTorch qLogEHVI)"),
    "lsbo": SearcherSpec(
        _single_fidelity(LinearScalarizedBOSearcher), "BO on a fixed equal-weight sum of normalised objectives"
    ),
    "rsbo": SearcherSpec(
        _single_fidelity(RandomScalarizedBOSearcher),
        "BO on a random Chebyshev scalarisation of normalised objectives, new weights per suggestion",
    ),
    "moasha": SearcherSpec(
        _moasha,
        "multi-objective asynchronous successive halving on epochs (grace 1, reduction 3, one bracket)",
        supports_multi_fidelity=True,
        standard_nas_only=True,
    ),
}


def searcher_names(mode: str = "standard") -> list[str]:
    """Names usable in ``mode`` ("standard" or "weight-sharing")."""
    _check_mode(mode)
    return [n for n, s in SEARCHERS.items() if mode == "standard" or not s.standard_nas_only]


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def make_scheduler(
    name: str,
    config_space: dict[str, Any],
    metrics: Sequence[str] = DEFAULT_METRICS,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    random_seed: int = 0,
    max_t: int = 5,
    resource_attr: str = "epoch",
    time_attr: str | None = None,
    mode: str = "standard",
    **kwargs: Any,
) -> TrialScheduler:
    """Build the Syne Tune scheduler registered as ``name``, minimising every metric in ``metrics``.

    :param name: One of :data:`SEARCHERS`.
    :param config_space: Syne Tune config space (constants allowed).
    :param metrics: Names of the minimised metrics in reported results: validation error, then size.
    :param points_to_evaluate: Initial design, suggested first and in order.
    :param random_seed: Seed of all the scheduler's random draws.
    :param max_t: Largest fidelity (epochs) reported by a trial; used by multi-fidelity entries.
    :param resource_attr: Result key of the fidelity (epoch); used by multi-fidelity entries.
    :param time_attr: Syne Tune's name for ``resource_attr`` (MOASHA's argument); must agree if both given.
    :param mode: "standard" (Tuner) or "weight-sharing" (ask/tell in one process; single fidelity only).
    :param kwargs: Searcher options (e.g. ``population_size``, ``num_random_candidates``, ``feature_groups``).
    """
    _check_mode(mode)
    spec = SEARCHERS.get(name)
    if spec is None:
        raise ValueError(f"unknown searcher {name!r}; valid names: {sorted(SEARCHERS)}")
    if mode == "weight-sharing" and spec.standard_nas_only:
        raise ValueError(
            f"searcher {name!r} is multi-fidelity and needs per-epoch results, so it only works for standard NAS; "
            f"searchers for weight-sharing search: {searcher_names('weight-sharing')}"
        )
    if len(metrics) < 2:
        raise ValueError(f"multi-objective search needs at least two metrics, got {list(metrics)}")
    if time_attr is not None and time_attr != resource_attr:
        raise ValueError(f"time_attr ({time_attr!r}) and resource_attr ({resource_attr!r}) name the same thing")
    request = SchedulerRequest(
        config_space=config_space,
        metrics=list(metrics),
        points_to_evaluate=list(points_to_evaluate or []),
        random_seed=int(random_seed),
        max_t=int(max_t),
        resource_attr=resource_attr,
        options=dict(kwargs),
    )
    return spec.factory(request)
