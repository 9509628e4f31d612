"""Multi-objective searchers on Syne Tune 0.16 for standard NAS (Tuner) and weight-sharing search (ask/tell)."""
from baselines.searchers.ask_tell import AskTellSearch, SearchExhausted, config_key, plain_config
from baselines.searchers.base import MultiObjectiveScheduler, MultiObjectiveSearcher, non_dominated
from baselines.searchers.encoding import ConfigEncoder
from baselines.searchers.registry import (
    DEFAULT_METRICS,
    SEARCHERS,
    SearcherSpec,
    make_scheduler,
    searcher_names,
)

__all__ = [
    "AskTellSearch",
    "ConfigEncoder",
    "DEFAULT_METRICS",
    "MultiObjectiveScheduler",
    "MultiObjectiveSearcher",
    "SEARCHERS",
    "SearchExhausted",
    "SearcherSpec",
    "config_key",
    "plain_config",
    "make_scheduler",
    "non_dominated",
    "searcher_names",
]
