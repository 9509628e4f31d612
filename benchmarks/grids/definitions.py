"""The grids of this project: the paper's (GPU clusters), a small CPU smoke grid and the CPU study."""
from __future__ import annotations

from dataclasses import replace

from benchmarks.grids.spec import GridSpec

# Budgets and protocol of the paper (method.md sections 4-6), for GPU clusters.
PAPER_GRID = GridSpec(
    name="paper",
    description="the paper's grid: 8 tasks x BERT/RoBERTa-base x 4 search spaces x 6 strategies x searchers",
    tasks=("rte", "mrpc", "cola", "stsb", "sst2", "qnli", "imdb", "swag"),
    models=("bert-base-cased", "roberta-base"),
    search_spaces=("small", "layer", "medium", "large"),
    strategies=("standard", "random", "linear_random", "sandwich", "kd", "full"),
    ws_searchers=("random_search", "morea", "local_search", "nsga2", "ehvi", "lsbo", "rsbo"),
    nas_searchers=("random_search", "morea", "local_search", "nsga2", "ehvi", "lsbo", "rsbo", "moasha"),
    seeds=tuple(range(10)),
    supernet_args=("--epochs", "5", "--lr", "2e-5", "--batch-size", "8", "--warmup-ratio", "0"),
    search_args=("--num-samples", "100"),
    nas_args=("--epochs", "5", "--lr", "2e-5", "--batch-size", "8", "--workers", "4", "--device", "auto"),
    nas_budget_s={"rte": 7200, "mrpc": 7200, "cola": 7200, "stsb": 7200, "default": 14400},
)

# A smoke test of the whole pipeline on a 2-core CPU in a few hours: tiny training subsets, so its numbers
# carry no signal (use cpu-study for results).
CPU_GRID = GridSpec(
    name="cpu",
    description="CPU smoke grid: MiniLM on MRPC and RTE subsets, small space, sandwich, 3 searchers x 3 seeds",
    tasks=("mrpc", "rte"),
    models=("minilm",),
    search_spaces=("small",),
    strategies=("sandwich",),
    ws_searchers=("random_search", "morea", "local_search"),
    nas_searchers=("random_search", "moasha", "local_search"),
    seeds=(0, 1, 2),
    supernet_args=("--epochs", "1", "--max-train-samples", "480", "--max-valid-samples", "128",
                   "--batch-size", "16", "--lr", "5e-5", "--threads", "2"),
    search_args=("--num-samples", "30", "--max-valid-samples", "128", "--max-test-samples", "128",
                 "--size-objective", "mac_fraction", "--threads", "2"),
    # the same validation and test subsets as the searches, so errors of both kinds are comparable
    nas_args=("--epochs", "2", "--max-train-samples", "96", "--max-valid-samples", "128",
              "--max-test-samples", "128", "--batch-size", "16", "--lr", "5e-5", "--workers", "2",
              "--threads", "2", "--size-objective", "mac_fraction"),
    nas_budget_s={"default": 90},
)

# The CPU protocol (shared/docs/cpu-protocol.md): 3 epochs, AdamW lr 5e-5, batch 16, 10% warm-up, 512 validation
# examples, the GLUE dev set as test set; size objective: fraction of encoder MACs (MiniLM's embeddings are half
# its parameters, so parameter fractions barely move).
_VALID = ("--max-valid-samples", "512")
_TRAIN = ("--epochs", "3", "--lr", "5e-5", "--batch-size", "16", "--weight-decay", "0.01", "--warmup-ratio", "0.1")
_MACS = ("--size-objective", "mac_fraction")

CPU_STUDY = GridSpec(
    name="cpu-study",
    description="CPU study: MiniLM on STS-B, SST-2 (5,000 examples), MRPC; 5 weight-sharing searchers, standard "
                "NAS (random search, MO-ASHA) at one wall-clock budget, 3 pruning baselines; STS-B also compares "
                "the 6 strategies and 4 search spaces; 3 seeds",
    tasks=("stsb", "sst2", "mrpc"),
    models=("minilm",),
    search_spaces=("small",),
    strategies=("sandwich",),
    ws_searchers=("random_search", "morea", "local_search", "nsga2", "ehvi"),
    nas_searchers=("random_search", "moasha"),
    seeds=(0, 1, 2),
    kinds=("ws", "nas", "prune"),
    task_args={"sst2": ("--max-train-samples", "5000")},
    supernet_args=(*_VALID, *_TRAIN),
    search_args=("--num-samples", "100", *_MACS, *_VALID),
    # one worker (2 cores); MO-ASHA's rungs are epochs 1..3; the budget is about what training the super-network
    # and one search of it take on 2 cores, so both kinds of NAS get the same wall clock
    nas_args=(*_TRAIN, *_VALID, *_MACS, "--workers", "1"),
    nas_budget_s={"default": 1800},
    finetune_args=(*_VALID, *_TRAIN),
    prune_args=(*_VALID, *_MACS),
    prune_methods={
        # drop the top 2, 3 or 5 of 6 layers (67%, 50%, 17% of the MACs), then 1 epoch of fine-tuning each
        "layer-drop": ("--layers-dropped", "2", "3", "5", "--epochs", "1", "--lr", "5e-5"),
        "head-prune": (),
        "rfp": ("--budgets", "0.25", "0.5", "0.75"),
    },
    parts=(),
)
# STS-B alone: the paper's strategy figure (6 strategies, small space) and search-space figure (4 spaces,
# sandwich), each super-network searched by random search; the main grid's sandwich/small runs are shared.
CPU_STUDY = replace(CPU_STUDY, parts=(
    replace(CPU_STUDY, name="cpu-study-strategies", tasks=("stsb",), kinds=("ws",), ws_searchers=("random_search",),
            strategies=("standard", "random", "linear_random", "sandwich", "kd", "full")),
    replace(CPU_STUDY, name="cpu-study-spaces", tasks=("stsb",), kinds=("ws",), ws_searchers=("random_search",),
            search_spaces=("small", "layer", "medium", "large")),
))

# Parity of mixed precision (README, Mixed precision): the CPU study's main super-network (with a random search of
# it) and plain fine-tuning on STS-B and SST-2, seeds 0 and 1; run with --precision bf16 and compared with the
# CPU study's fp32 runs (benchmarks/studies/precision.py).
PRECISION_GRID = replace(
    CPU_STUDY, name="precision", parts=(), tasks=("stsb", "sst2"), seeds=(0, 1), kinds=("ws", "prune"),
    ws_searchers=("random_search",), prune_methods={},
    description="mixed-precision parity: the CPU study's sandwich super-network (searched by random search) and "
                "plain fine-tuning on STS-B and SST-2, seeds 0 and 1",
)

# The super-network recipe, the commands' default (docs/supernet-training.md): every super-network starts from the
# same seed's plain fine-tuning (rewired before its first step, the fine-tuned model its frozen teacher) and trains
# for 2 more epochs.
_RECIPE_SUPERNET = (*_VALID, "--epochs", "2", "--lr", "5e-5", "--batch-size", "16", "--weight-decay", "0.01",
                    "--warmup-ratio", "0.1")

# Searchers compared with statistical power (docs/searchers.md): on one super-network per task (the
# default recipe, CPU protocol), every weight-sharing searcher with 10 seeds; a second super-network per task with
# 5 searcher seeds shows how much of the variance the super-network adds.
_SEARCHERS = ("random_search", "morea", "local_search", "nsga2", "ehvi", "lsbo", "rsbo")
SEARCHERS_GRID = replace(
    CPU_STUDY, name="searchers", kinds=("ws",), ws_searchers=_SEARCHERS, seeds=tuple(range(10)), supernet_seeds=(0,),
    supernet_from_finetuned=True, supernet_args=_RECIPE_SUPERNET,
    description="searchers with statistical power: 7 weight-sharing searchers x 10 seeds on one recipe super-network "
                "per task (STS-B, SST-2, MRPC), and x 5 seeds on a second one",
    parts=(),
)
SEARCHERS_GRID = replace(SEARCHERS_GRID, parts=(
    replace(SEARCHERS_GRID, name="searchers-second-supernet", seeds=tuple(range(5)), supernet_seeds=(1,)),
))

# The super-network recipe against the pruning baselines (docs/supernet-training.md): the CPU study's tasks, seeds,
# searchers and baselines, with the recipe's super-networks; no standard NAS.
RECIPE_GRID = replace(
    CPU_STUDY, name="recipe", kinds=("prune", "ws"), parts=(), supernet_from_finetuned=True,
    supernet_args=_RECIPE_SUPERNET, supernet_min_train_words=None,
    description="the super-network recipe (from plain fine-tuning, its frozen teacher, 2 epochs; SST-2's on its "
                "sentence-like examples) against layer "
                "dropping, head pruning and retraining-free pruning: STS-B, SST-2 (5,000 examples), MRPC; 5 "
                "weight-sharing searchers; 3 seeds",
)

GRIDS: dict[str, GridSpec] = {grid.name: grid
                              for grid in (PAPER_GRID, CPU_GRID, CPU_STUDY, PRECISION_GRID, SEARCHERS_GRID,
                                           RECIPE_GRID)}


def get_grid(name: str) -> GridSpec:
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; choose from {', '.join(GRIDS)}")
    return GRIDS[name]
