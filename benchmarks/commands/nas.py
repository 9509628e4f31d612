"""``plm-nas nas``: standard NAS, a Syne Tune tuning job whose trials each fine-tune one sub-network on its own.

Every trial (:mod:`benchmarks.nas.trial`, a separate process started by Syne Tune's ``LocalBackend``)
extracts its sub-network from the pre-trained model, fine-tunes it and reports validation error, test error
and the cost fields after every epoch. The searcher (any of :data:`baselines.searchers.SEARCHERS`, MO-ASHA
included, which stops trials early on ``epoch``) minimises (validation error, size objective). The initial
design is [largest, smallest, midpoint]. ``--workers N`` runs N trials at once, each with
``--threads // N`` torch threads; the budget is wall-clock seconds (``--max-wallclock``: running trials are
stopped when it is spent) and/or a number of trials (``--max-trials``: started trials finish).

Outputs in ``--output-dir``:

* ``results.csv``: the tidy results table with ONE ROW PER TRIAL AND EPOCH (``epoch`` filled; ``runtime_s``
  is when the epoch was reported), so that hypervolume over time can be computed. Rows are ordered by trial,
  then epoch; a trial is identified by (``run_id``, ``config``). The per-trial result of the method is the
  trial's best-validation epoch row (``plotting.hypervolume.best_epoch_rows``), and ``pareto`` is True
  exactly for best-epoch rows on the front of all trials' best-epoch rows. The file is rewritten atomically
  after every reported epoch.
* ``run.json`` (arguments, versions), ``trial_settings.json`` (what every trial shares), and
  ``syne-tune/`` (Syne Tune's own records and one folder per trial with its logs and, while it runs, its
  last epoch's checkpoint). With ``--save-models`` a trial keeps its best epoch's model in
  ``syne-tune/TRIAL_ID/best_model`` for ``plm-nas export``.
* ``scheduler_journal.jsonl`` (local backend): every call to the searcher, so that ``--resume`` can replay it.

``--resume`` continues an interrupted run on either backend: finished trials are kept, the searcher is restored
(Ray: from Ray Tune's experiment state; local: replayed from the journal, so it proposes what it would have),
and unfinished trials continue from their last epoch checkpoint (locally in new trial folders).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from benchmarks.commands.names import SEARCH_SPACE_NAMES, SEARCHER_NAMES
from benchmarks.commands.options import (
    DEFAULT_LR,
    DEVICES,
    add_latency_table_argument,
    add_min_train_words_argument,
    add_precision_argument,
    add_size_objective_argument,
    add_task_arguments,
    check_option_ranges,
    read_latency_table,
    resolve_precision_option,
    task_spec,
)
from benchmarks.results import RESULTS_FILE

DEFAULT_SEARCHER = "random_search"  # as benchmarks.nas.common's
DEFAULT_SEARCH_SPACE = "small"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="minilm", help="hub name or local folder (default: embedded MiniLM-L6)")
    add_task_arguments(parser)
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for results.csv, run.json and trial logs")
    parser.add_argument("--search-space", default=DEFAULT_SEARCH_SPACE, choices=SEARCH_SPACE_NAMES)
    parser.add_argument("--searcher", default=DEFAULT_SEARCHER, choices=SEARCHER_NAMES)
    add_size_objective_argument(parser)
    add_latency_table_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the searcher and of every trial's fine-tuning")
    parser.add_argument("--dataset-seed", type=int, default=0, help="seed of the 70/30 train/validation split")
    parser.add_argument("--run-id", default=None, help="run identifier in the results (default: from the settings)")
    budget = parser.add_argument_group("budget (give at least one)")
    budget.add_argument("--max-wallclock", type=float, default=None, help="seconds; running trials are stopped then")
    budget.add_argument("--max-trials", type=int, default=None, help="number of trials; started trials finish")
    parallel = parser.add_argument_group("parallelism")
    parallel.add_argument("--workers", type=int, default=1, help="trials run in parallel")
    parallel.add_argument("--threads", type=int, default=None,
                          help="CPU threads in all (default: all cores); each trial gets threads // workers")
    parallel.add_argument("--device", default="cpu", choices=DEVICES, help="device of every trial")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parallel.add_argument("--poll-interval", type=float, default=2.0, help="seconds between Syne Tune's polls")
    protocol = parser.add_argument_group("fine-tuning protocol of every trial (defaults: the paper's)")
    protocol.add_argument("--epochs", type=int, default=5, help="epochs per trial (MO-ASHA's maximum resource)")
    protocol.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"AdamW learning rate (default {DEFAULT_LR:g})")
    protocol.add_argument("--batch-size", type=int, default=8)
    protocol.add_argument("--eval-batch-size", type=int, default=32)
    protocol.add_argument("--weight-decay", type=float, default=0.0)
    protocol.add_argument("--warmup-ratio", type=float, default=0.0, help="fraction of steps of linear warm-up")
    protocol.add_argument("--max-length", type=int, default=128, help="maximum tokens per example")
    protocol.add_argument("--seq-len", type=int, default=None, help="sequence length of MAC counts (default: --max-length)")
    protocol.add_argument("--max-train-samples", type=int, default=None, help="seeded subset of the training split")
    add_min_train_words_argument(protocol)
    protocol.add_argument("--max-valid-samples", type=int, default=None,
                          help="seeded subset of the validation split (default: 2,048 for large tasks, else all)")
    protocol.add_argument("--max-test-samples", type=int, default=None, help="seeded subset of the test split")
    add_precision_argument(protocol, "trials' forward passes")
    parser.add_argument("--save-models", action="store_true",
                        help="every trial keeps its best epoch's extracted model (for plm-nas export)")
    backend = parser.add_argument_group("backend (where trials run)")
    backend.add_argument("--backend", default="local", choices=("local", "ray"),
                         help="local: Syne Tune processes on this machine; ray: Ray Tune trials on a Ray cluster")
    backend.add_argument("--ray-address", default=None,
                         help="HOST:PORT of a running Ray cluster (default: start a loopback-only Ray on this machine)")
    backend.add_argument("--cpus-per-trial", type=int, default=None,
                         help="Ray: CPUs (and torch threads) of each trial (default: --threads // --workers)")
    backend.add_argument("--gpus-per-trial", type=float, default=None, help="Ray: GPUs of each trial (>0: device cuda)")
    backend.add_argument("--max-failures", type=int, default=2,
                         help="Ray: restarts of a failed trial from its last epoch checkpoint")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --output-dir (same arguments): finished trials are kept, "
                             "the searcher's state is restored, unfinished trials continue from their last epoch")


def run(args: argparse.Namespace) -> int:
    """Run standard NAS on the chosen backend."""
    from benchmarks.nas.common import NasSettings
    from benchmarks.tasks.definition import task_definition

    check_option_ranges(args)
    from benchmarks.objectives import check_latency_objective
    from benchmarks.tasks.sources import check_local_copy

    check_latency_objective(args.size_objective, args.latency_table)
    read_latency_table(args.latency_table)  # readable, before Syne Tune or Ray start

    task = task_spec(args)  # your own files are read and checked here, before Syne Tune or Ray start
    check_local_copy(task, args.data_dir)
    if args.backend == "local":  # Ray trials may find the model on their own nodes
        check_model_loads(args.model, task)
    settings = replace(NasSettings.from_args(args), task=task.name,
                       task_definition=task_definition(task) if task.files is not None else None)
    settings = replace(settings, protocol=replace(settings.protocol, precision=trial_precision(args)))
    if settings.backend == "ray":
        from benchmarks.nas.ray_backend import run_ray

        code = run_ray(settings, args)
    else:
        from benchmarks.nas.local_backend import run_local

        code = run_local(settings, args)
    check_some_trial_reported(Path(settings.output_dir))
    return code


def check_model_loads(model: str, task: object) -> None:
    """Load the model and tokenizer once, as every trial will, before the run's folder is made: a model that cannot
    be loaded (a damaged checkpoint, an unsupported family, a head fine-tuned for another task, a hub name not
    available offline) is refused here instead of failing in every trial."""
    from supernet.loading import load_model, load_tokenizer

    load_model(model, head=task.head, num_labels=task.num_labels, problem_type=task.problem_type, device="cpu")
    load_tokenizer(model)


def trial_precision(args: argparse.Namespace) -> str:
    """The trials' precision: ``--precision`` resolved for their device (a resumed run keeps its recorded one).

    Ray trials on GPUs this machine does not have cannot be asked whether they run bf16: there ``auto`` is
    refused and an explicit precision is taken as given.
    """
    import torch

    from benchmarks.errors import UsageError
    from benchmarks.nas.common import SETTINGS_FILE
    from benchmarks.nas.trial import TrialSettings

    stored = Path(args.output_dir) / SETTINGS_FILE
    recorded = TrialSettings.read(stored).protocol.precision if args.resume and stored.is_file() else None
    device = "cuda" if (args.gpus_per_trial or 0) > 0 else args.device
    if device != "cuda" or torch.cuda.is_available():
        return resolve_precision_option(args.precision, device, recorded, where="the earlier run").name
    chosen = recorded or args.precision
    if args.precision not in ("auto", chosen):
        raise UsageError(f"--precision {args.precision}: the earlier run ran in {chosen}, and a resumed run keeps "
                         "its precision; drop --precision, or use another output folder")
    if chosen == "auto":
        raise UsageError("--precision auto cannot tell from this machine (no CUDA here) whether the trials' GPUs "
                         "run bf16; pass --precision bf16, fp16 or fp32")
    print(f"precision: {chosen} ({'kept from the earlier run' if recorded else 'asked for'}, on the trials' GPUs)",
          flush=True)
    return chosen


def check_some_trial_reported(output_dir: Path) -> None:
    """No silent success: when no trial reported an epoch, fail with the first failed trial's error."""
    import pandas as pd

    from benchmarks.errors import CommandFailed

    results = output_dir / RESULTS_FILE
    if results.is_file() and len(pd.read_csv(results)) > 0:
        return
    logs = sorted(output_dir.rglob("std.err"), key=lambda path: path.stat().st_mtime)
    for log in logs:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "Error" in line or "error:" in line]
        if errors:
            raise CommandFailed(f"every trial failed; the first ({log}): {errors[-1]}")
    raise CommandFailed(f"no trial reported a result (see the trial logs under {output_dir}); check the data and "
                       "the trial settings, or give a larger --max-wallclock")
