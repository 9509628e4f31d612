"""The names the command line offers as choices, importable without torch so ``--help`` and argument errors are fast.

Each tuple mirrors one registry (``search_spaces.SEARCH_SPACES``, ``supernet.strategies.STRATEGIES``,
``baselines.searchers.SEARCHERS``, ``benchmarks.prune.methods.METHODS``, ``baselines.pruning.rfp.pipeline.TEACHERS``,
``supernet.precision.PRECISIONS``);
``tests/benchmarks/test_cli_errors.py`` checks that they stay equal.
"""
from __future__ import annotations

SEARCH_SPACE_NAMES = ("small", "smallpower2", "layer", "medium", "large")
STRATEGY_NAMES = ("standard", "random", "linear_random", "sandwich", "kd", "full")
SEARCHER_NAMES = ("random_search", "morea", "local_search", "nsga2", "ehvi", "lsbo", "rsbo", "moasha")
PRUNE_METHOD_NAMES = ("layer-drop", "head-prune", "rfp")
RFP_TEACHER_NAMES = ("full", "intermediate")
PRECISION_NAMES = ("auto", "fp32", "bf16", "fp16")
# What --precision defaults to (see README, Mixed precision: parity of bf16 with fp32 measured before it became auto).
DEFAULT_PRECISION = "auto"
DEFAULT_MODEL = "minilm"  # as supernet.loading.DEFAULT_MODEL
DEFAULT_MAX_LENGTH = 128  # as benchmarks.tasks.loaders.DEFAULT_MAX_LENGTH
