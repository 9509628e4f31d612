"""``plm-nas prune``: structural pruning baselines on a fine-tuned model, into the NAS results table.

Each method starts from a model fine-tuned by ``plm-nas finetune`` (``--finetuned DIR``: its output folder or
its ``best_model/``) and proposes sub-networks, each extracted as a physically smaller model and scored on
the validation and test splits:

- ``layer-drop`` (Sajjad et al.): drop the top k layers, k = 1 .. L-1, and fine-tune each remaining model with
  standard NAS's protocol (AdamW, linear schedule); the row reports the best-validation epoch and its test error.
- ``head-prune`` (Michel et al., 2019): remove the least important heads (mask-gradient importance over the
  validation split) in steps of 10% of all heads, re-scoring after every step, without retraining.
- ``rfp`` (Kwon et al., 2022): retraining-free pruning for each MAC budget of a grid: Fisher mask search on a
  sample of the training split, mask rearrangement and rescaling (scales folded into the extracted weights).

Rows (kind ``baseline``, the method's name, the masks as config) go to ``OUTPUT_DIR/results.csv`` after every
sub-network, with one row for the unpruned model (size fraction 1.0) first; ``prune.json`` holds per-row
details (budget, step, layers dropped, fine-tuning history, rescaling errors, seconds) and ``run.json`` the run.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.commands.names import PRUNE_METHOD_NAMES, RFP_TEACHER_NAMES
from benchmarks.commands.options import (
    DEFAULT_LR,
    DEVICES,
    add_latency_table_argument,
    add_min_train_words_argument,
    add_precision_argument,
    add_size_objective_argument,
    add_task_arguments,
    check_option_ranges,
    custom_data_given,
    read_latency_table,
    resolve_precision_option,
    task_spec,
)
from benchmarks.results import RESULTS_FILE
from benchmarks.runinfo import write_run_info

if TYPE_CHECKING:  # torch loads only when the command runs, so --help answers fast
    from benchmarks.prune.context import PruneSettings

DEFAULT_BUDGETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # as benchmarks.prune.context.DEFAULT_BUDGETS
MODELS_DIR = "models"  # as benchmarks.prune.rows.MODELS_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", required=True, choices=PRUNE_METHOD_NAMES, help="pruning baseline")
    parser.add_argument("--finetuned", required=True, type=Path,
                        help="output folder of `plm-nas finetune` (or the model folder inside it)")
    add_task_arguments(parser, stored="the fine-tuned model")
    parser.add_argument("--output-dir", required=True, type=Path,
                        help="folder for results.csv, prune.json and run.json")
    parser.add_argument("--run-id", default=None, help="run identifier in the results (default: from the settings)")
    add_size_objective_argument(parser)
    add_latency_table_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling and of layer-drop fine-tuning")
    parser.add_argument("--dataset-seed", type=int, default=None,
                        help="seed of the 70/30 train/validation split (default and required: the fine-tuned "
                             "model's, from its run.json; another one needs --force)")
    parser.add_argument("--force", action="store_true",
                        help="allow a dataset seed other than the one the model was fine-tuned with")
    parser.add_argument("--max-length", type=int, default=128, help="maximum tokens per example")
    parser.add_argument("--seq-len", type=int, default=None,
                        help="sequence length of MAC counts (default: --max-length)")
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument("--max-valid-samples", type=int, default=None,
                        help="seeded subset of the validation split (default: 2,048 for large tasks, else all)")
    parser.add_argument("--max-test-samples", type=int, default=None, help="seeded subset of the test split")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    add_precision_argument(parser, "forward passes (scoring, gradients, layer-drop's fine-tuning; rfp's "
                                   "least-squares rescaling stays fp32)")
    parser.add_argument("--save-models", action="store_true", help=f"save every extracted model under {MODELS_DIR}/")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")

    drop = parser.add_argument_group("layer-drop: fine-tuning of every remaining model (defaults: standard NAS's)")
    drop.add_argument("--layers-dropped", type=int, nargs="+", default=None,
                      help="numbers of top layers to drop (default: 1 .. L-1)")
    drop.add_argument("--epochs", type=int, default=5)
    drop.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"AdamW learning rate (default {DEFAULT_LR:g})")
    drop.add_argument("--batch-size", type=int, default=8)
    drop.add_argument("--weight-decay", type=float, default=0.0)
    drop.add_argument("--warmup-ratio", type=float, default=0.0, help="fraction of steps of linear warm-up")
    drop.add_argument("--max-train-samples", type=int, default=None, help="seeded subset of the training split")
    add_min_train_words_argument(drop)

    heads = parser.add_argument_group("head-prune")
    heads.add_argument("--step-fraction", type=float, default=0.1, help="fraction of all heads removed per step")

    rfp = parser.add_argument_group("rfp: retraining-free pruning")
    rfp.add_argument("--budgets", type=float, nargs="+", default=list(DEFAULT_BUDGETS),
                     help="MAC budgets as fractions of the full model's MACs")
    rfp.add_argument("--num-samples", type=int, default=1024, help="training examples for Fisher and rescaling")
    rfp.add_argument("--sample-batch-size", type=int, default=32)
    rfp.add_argument("--teacher", default="full", choices=RFP_TEACHER_NAMES,
                     help="what rescaling reconstructs: the full model, or Kwon et al.'s sqrt(budget) sub-network")
    rfp.add_argument("--no-rearrange", action="store_true", help="skip mask rearrangement")
    rfp.add_argument("--no-rescale", action="store_true", help="skip mask rescaling")
    rfp.add_argument("--max-scale", type=float, default=10.0, help="reject fitted scales beyond this magnitude")


def default_run_id(settings: PruneSettings) -> str:
    return f"prune-{settings.method}-{settings.task}-seed{settings.seed}"


def run(args: argparse.Namespace) -> int:
    """Prune with one method, scoring the unpruned model first, and write the results table."""
    from tqdm.auto import tqdm

    from benchmarks.objectives import check_latency_objective
    from benchmarks.prune.context import Candidate, PruneSettings, check_settings, locate_finetuned, prepare
    from benchmarks.prune.methods import get_method
    from benchmarks.prune.rows import ResultsWriter
    from search_spaces.masks import SubNetworkMasks

    check_option_ranges(args)
    settings = PruneSettings.from_args(args)
    check_settings(settings)
    check_latency_objective(settings.size_objective, settings.latency_table)
    read_latency_table(settings.latency_table)  # readable, before anything is loaded
    method = get_method(settings.method)
    task = task_spec(args) if custom_data_given(args) else None
    finetuned = locate_finetuned(settings, task)  # model folder, task and split seed checked before writing anything
    settings = replace(settings, task=finetuned.task.name,
                       precision=resolve_precision_option(args.precision, settings.device).name)
    ctx = prepare(settings, method.extra_splits, finetuned)  # model, tokenizer and data load before anything is written
    if settings.layers_dropped is not None:  # the model's depth is known now: refuse too many before writing
        from baselines.pruning.layer_drop import layer_drop_schedule

        layer_drop_schedule(ctx.shape, list(settings.layers_dropped))
    output_dir = settings.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    run_id = settings.run_id or default_run_id(settings)
    write_run_info(output_dir, args, seed=settings.seed, command_name="prune", run_id=run_id,
                   dataset_seed=finetuned.dataset_seed, finetuned_model=str(finetuned.model_dir),
                   precision=settings.precision)
    writer = ResultsWriter(ctx=ctx, run_id=run_id, started=time.perf_counter())
    writer.add(Candidate(masks=SubNetworkMasks.full(ctx.shape), model=ctx.model, details={"unpruned": True}))
    for candidate in method.candidates(ctx):
        row = writer.add(candidate)
        tqdm.write(f"{method.name}: {row.param_fraction:.1%} params, {row.mac_fraction:.1%} MACs, "
                   f"valid error {row.valid_error:.4f}, test error {row.test_error:.4f}")
    print(f"{len(writer.rows)} rows in {output_dir / RESULTS_FILE}", flush=True)
    return 0
