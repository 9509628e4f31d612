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
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from baselines.pruning.rfp.pipeline import TEACHERS
from benchmarks.tasks.data import AUTO, load_splits, make_dataloaders, subsample
from benchmarks.commands.finetune import DEVICES
from benchmarks.tasks.metrics import metrics_fn
from benchmarks.objectives import add_size_objective_argument, masks_cost
from benchmarks.files import write_json_atomic
from benchmarks.results import RESULTS_FILE, ResultRow, mark_pareto, rows_to_frame, write_atomic
from benchmarks.runinfo import write_run_info
from benchmarks.tasks.registry import TaskSpec, get_task
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape

DETAILS_FILE = "prune.json"
MODELS_DIR = "models"
FINETUNE_BEST_DIR = "best_model"  # where `plm-nas finetune` saves its model
FINETUNE_METRICS = "metrics.json"
DEFAULT_BUDGETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
KIND = "baseline"
# The option giving each split's batch size; "sample" is rfp's seeded subset of the training split.
BATCH_SIZE_ARGS = {"train": "batch_size", "validation": "eval_batch_size", "test": "eval_batch_size",
                   "sample": "sample_batch_size"}


# ------------------------------------------------------------------------------------------------ arguments


def finetuned_dataset_seed(finetuned: Path, requested: int | None, force: bool) -> int:
    """The split seed of the fine-tuned model (from its ``run.json``), so its training examples stay out of
    validation; a model without ``run.json`` (fine-tuned elsewhere) uses ``requested`` or 0."""
    from benchmarks.commands.search import check_dataset_seed

    info = finetuned / "run.json"
    if not info.is_file():
        return 0 if requested is None else requested
    trained = json.loads(info.read_text()).get("arguments", {}).get("dataset_seed")
    if trained is None:
        return 0 if requested is None else requested
    return check_dataset_seed(requested, int(trained), force)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", required=True, choices=tuple(METHODS), help="pruning baseline")
    parser.add_argument("--finetuned", required=True, type=Path,
                        help="output folder of `plm-nas finetune` (or the model folder inside it)")
    parser.add_argument("--task", required=True, help="task name, e.g. rte, mrpc, stsb")
    parser.add_argument("--data-dir", default=None,
                        help="local copy of the data (default: $GLUE_DIR for GLUE, else the hub)")
    parser.add_argument("--output-dir", required=True, type=Path,
                        help="folder for results.csv, prune.json and run.json")
    parser.add_argument("--run-id", default=None, help="run identifier in the results (default: from the settings)")
    add_size_objective_argument(parser)
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
    parser.add_argument("--save-models", action="store_true", help=f"save every extracted model under {MODELS_DIR}/")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")

    drop = parser.add_argument_group("layer-drop: fine-tuning of every remaining model (defaults: standard NAS's)")
    drop.add_argument("--layers-dropped", type=int, nargs="+", default=None,
                      help="numbers of top layers to drop (default: 1 .. L-1)")
    drop.add_argument("--epochs", type=int, default=5)
    drop.add_argument("--lr", type=float, default=2e-5, help="AdamW learning rate")
    drop.add_argument("--batch-size", type=int, default=8)
    drop.add_argument("--weight-decay", type=float, default=0.0)
    drop.add_argument("--warmup-ratio", type=float, default=0.0, help="fraction of steps of linear warm-up")
    drop.add_argument("--max-train-samples", type=int, default=None, help="seeded subset of the training split")

    heads = parser.add_argument_group("head-prune")
    heads.add_argument("--step-fraction", type=float, default=0.1, help="fraction of all heads removed per step")

    rfp = parser.add_argument_group("rfp: retraining-free pruning")
    rfp.add_argument("--budgets", type=float, nargs="+", default=list(DEFAULT_BUDGETS),
                     help="MAC budgets as fractions of the full model's MACs")
    rfp.add_argument("--num-samples", type=int, default=1024, help="training examples for Fisher and rescaling")
    rfp.add_argument("--sample-batch-size", type=int, default=32)
    rfp.add_argument("--teacher", default="full", choices=tuple(TEACHERS),
                     help="what rescaling reconstructs: the full model, or Kwon et al.'s sqrt(budget) sub-network")
    rfp.add_argument("--no-rearrange", action="store_true", help="skip mask rearrangement")
    rfp.add_argument("--no-rescale", action="store_true", help="skip mask rescaling")
    rfp.add_argument("--max-scale", type=float, default=10.0, help="reject fitted scales beyond this magnitude")


def check_arguments(args: argparse.Namespace) -> None:
    """Raise a ValueError naming the option for settings that cannot work."""
    positive = ("max_length", "eval_batch_size", "epochs", "batch_size", "num_samples", "sample_batch_size")
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seq_len is not None and args.seq_len < 1:
        raise ValueError(f"--seq-len must be >= 1, got {args.seq_len}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    bad = [b for b in args.budgets if not 0.0 < b <= 1.0]
    if bad:
        raise ValueError(f"--budgets are fractions of the full model's MACs in (0, 1], got {bad}")
    if not 0.0 < args.step_fraction <= 1.0:
        raise ValueError(f"--step-fraction must be in (0, 1], got {args.step_fraction}")


def default_run_id(args: argparse.Namespace) -> str:
    return f"prune-{args.method}-{args.task}-seed{args.seed}"


def finetuned_model_dir(path: Path) -> Path:
    """The model folder of a ``plm-nas finetune`` output folder, or ``path`` itself when it holds a model."""
    for candidate in (path / FINETUNE_BEST_DIR, path):
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"{path} holds no fine-tuned model: pass the output folder of `plm-nas finetune` or its {FINETUNE_BEST_DIR}/"
    )


def base_model_name(finetuned: Path, model_dir: Path) -> str:
    """The pre-trained model's name as ``plm-nas finetune`` recorded it, else the fine-tuned folder."""
    for folder in (finetuned, model_dir.parent):
        metrics = folder / FINETUNE_METRICS
        if metrics.is_file():
            name = json.loads(metrics.read_text()).get("model")
            if name:
                return str(name)
    return str(model_dir)


# ------------------------------------------------------------------------------------------------- context


@dataclass
class PruneContext:
    """Everything a method needs: the fine-tuned model, the task, the loaders and the settings."""

    args: argparse.Namespace
    task: TaskSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    shape: ModelShape
    loaders: dict[str, DataLoader]
    device: torch.device
    model_name: str  # the pre-trained model the fine-tuned one came from, for the results' model column

    @property
    def progress(self) -> bool:
        return not self.args.no_progress

    @property
    def seq_len(self) -> int:
        return self.args.seq_len or self.args.max_length


@dataclass
class Candidate:
    """One pruned model of a method; errors are set when the method chose an epoch by validation itself."""

    masks: SubNetworkMasks
    model: PreTrainedModel
    details: dict[str, Any] = field(default_factory=dict)
    valid_error: float | None = None
    test_error: float | None = None
    epoch: float = math.nan


def prepare(args: argparse.Namespace) -> PruneContext:
    """Load the fine-tuned model, its tokenizer, the task's splits and loaders."""
    from supernet.loading import load_model, load_tokenizer, model_shape, resolve_device
    from supernet.training import seed_everything

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    task = get_task(args.task)
    device = resolve_device(args.device)
    seed_everything(args.seed)
    model_dir = finetuned_model_dir(Path(args.finetuned))
    model = load_model(str(model_dir), head=task.head, num_labels=task.num_labels,
                       problem_type=task.problem_type, device=device).eval()
    tokenizer = load_tokenizer(str(model_dir))
    args.dataset_seed = finetuned_dataset_seed(Path(args.finetuned), args.dataset_seed, args.force)
    splits = load_splits(task, data_dir=args.data_dir, seed=args.dataset_seed,
                         max_valid_samples=AUTO if args.max_valid_samples is None else args.max_valid_samples,
                         max_train_samples=args.max_train_samples)
    splits["test"] = subsample(splits["test"], args.max_test_samples, args.dataset_seed)
    splits["sample"] = subsample(splits["train"], args.num_samples, args.seed)
    wanted = ("validation", "test", *get_method(args.method).extra_splits)
    loaders = {
        split: make_dataloaders(task, {split: splits[split]}, tokenizer, max_length=args.max_length, seed=args.seed,
                                batch_size=getattr(args, BATCH_SIZE_ARGS[split]))[split]
        for split in wanted
    }
    return PruneContext(args=args, task=task, model=model, tokenizer=tokenizer, shape=model_shape(model),
                        loaders=loaders, device=device, model_name=base_model_name(Path(args.finetuned), model_dir))


def evaluate_error(ctx: PruneContext, model: PreTrainedModel, split: str) -> float:
    """The task error (1 - main metric) of ``model`` on a split."""
    from supernet.evaluation import evaluate

    return float(evaluate(model, ctx.loaders[split], metrics_fn=metrics_fn(ctx.task)).metrics["error"])


# ------------------------------------------------------------------------------------------------- methods


def layer_drop_candidates(ctx: PruneContext) -> Iterator[Candidate]:
    """Drop k top layers and fine-tune what remains, for each k."""
    from baselines.pruning.layer_drop import layer_drop_schedule
    from supernet.extract import extract_sub_network

    schedule = layer_drop_schedule(ctx.shape, ctx.args.layers_dropped)
    for masks in tqdm(schedule, desc="layer dropping", disable=not ctx.progress, dynamic_ncols=True):
        model = extract_sub_network(ctx.model, masks)
        history, best = fine_tune(ctx, model)
        yield Candidate(
            masks=masks,
            model=model,
            details={"layers_dropped": ctx.shape.num_layers - sum(masks.layers_kept), "best_epoch": best["epoch"],
                     "history": history},
            valid_error=best["valid_error"],
            test_error=best["test_error"],
            epoch=float(best["epoch"]),
        )


def fine_tune(ctx: PruneContext, model: PreTrainedModel) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Standard NAS's fine-tuning of one extracted model; returns the history and the best-validation epoch.

    Validation and test errors are scored after every epoch; ``model`` ends with the best epoch's weights.
    """
    from benchmarks.nas.trial import FixedNetwork
    from supernet.strategies import get_strategy
    from supernet.training import Trainer, TrainerCallback, TrainerConfig

    args = ctx.args
    best: dict[str, Any] = {"valid_error": math.inf}
    best_state: dict[str, torch.Tensor] = {}

    class ScoreEpoch(TrainerCallback):
        def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any]:
            record = {"valid_error": evaluate_error(ctx, model, "validation"),
                      "test_error": evaluate_error(ctx, model, "test")}
            if record["valid_error"] < best["valid_error"]:
                best.update(record, epoch=epoch)
                best_state.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            return record

    config = TrainerConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                           weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, seed=args.seed,
                           device=str(ctx.device), progress=ctx.progress)
    trainer = Trainer(FixedNetwork(model, ctx.shape), get_strategy("standard"), ctx.loaders["train"], config,
                      checkpoint_dir=None, callbacks=[ScoreEpoch()])
    history = trainer.fit()
    model.load_state_dict(best_state)
    model.eval()
    return history, best


def head_prune_candidates(ctx: PruneContext) -> Iterator[Candidate]:
    """Michel et al.'s iterative head pruning, importance scored on the validation split."""
    from baselines.pruning.head_prune import HeadPruneConfig, head_pruning_steps
    from supernet.extract import extract_sub_network

    config = HeadPruneConfig(step_fraction=ctx.args.step_fraction)
    steps = head_pruning_steps(ctx.model, ctx.loaders["validation"], config, progress=ctx.progress)
    total_heads = ctx.shape.num_layers * ctx.shape.num_heads
    num_steps = math.ceil((total_heads - 1) / config.heads_per_step(total_heads))
    for step in tqdm(steps, desc="head pruning", total=num_steps + 1, disable=not ctx.progress, dynamic_ncols=True):
        if step.step == 0:
            continue  # the unpruned model has its own row
        yield Candidate(
            masks=step.masks,
            model=extract_sub_network(ctx.model, step.masks),
            details={"step": step.step, "heads_kept": int(step.masks.heads.sum()),
                     "importance": step.importance.tolist()},
        )


def rfp_candidates(ctx: PruneContext) -> Iterator[Candidate]:
    """Kwon et al.'s retraining-free pruning at every MAC budget, from one set of sample gradients."""
    from baselines.pruning.rfp import RFPConfig, fisher_gradients, pruned_model, retraining_free_prune

    args = ctx.args
    config = RFPConfig(seq_len=ctx.seq_len, rearrange=not args.no_rearrange, rescale=not args.no_rescale,
                       teacher=args.teacher, max_scale=args.max_scale, progress=ctx.progress)
    sample = ctx.loaders["sample"]
    started = time.perf_counter()
    grads = fisher_gradients(ctx.model, sample, progress=ctx.progress)
    gradient_seconds = time.perf_counter() - started
    budgets = tqdm(sorted(args.budgets), desc="retraining-free pruning", disable=not ctx.progress, dynamic_ncols=True)
    for budget in budgets:
        started = time.perf_counter()
        result = retraining_free_prune(ctx.model, grads, sample, budget, config)
        details = {
            "budget": budget,
            "teacher": config.teacher,
            "gradient_seconds": gradient_seconds,
            "prune_seconds": time.perf_counter() - started,
            "searched_heads_per_layer": result.searched.heads_per_layer,
            "searched_units_per_layer": result.searched.units_per_layer,
        }
        if result.rescale is not None:
            details["rescale_errors_before"] = _finite_or_none(result.rescale.errors_before.tolist())
            details["rescale_errors_after"] = _finite_or_none(result.rescale.errors_after.tolist())
        yield Candidate(masks=result.masks, model=pruned_model(ctx.model, result), details=details)


def _finite_or_none(values: list[list[float]]) -> list[list[float | None]]:
    """JSON has no NaN: blocks that were not fitted become null."""
    return [[v if math.isfinite(v) else None for v in row] for row in values]


@dataclass(frozen=True)
class Method:
    """A pruning baseline: its name in the results, its pruned models, the data it needs beyond validation and test."""

    name: str
    candidates: Callable[[PruneContext], Iterator[Candidate]]
    extra_splits: tuple[str, ...] = ()


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("layer-drop", layer_drop_candidates, extra_splits=("train",)),
        Method("head-prune", head_prune_candidates),
        Method("rfp", rfp_candidates, extra_splits=("sample",)),
    )
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown pruning method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name]


# ------------------------------------------------------------------------------------------------- the run


@dataclass
class ResultsWriter:
    """Scores candidates into rows and rewrites results.csv and prune.json after each one."""

    ctx: PruneContext
    run_id: str
    started: float
    rows: list[ResultRow] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def output_dir(self) -> Path:
        return Path(self.ctx.args.output_dir)

    def add(self, candidate: Candidate) -> ResultRow:
        ctx, args = self.ctx, self.ctx.args
        cost = masks_cost(ctx.shape, candidate.masks, seq_len=ctx.seq_len)
        actual = sum(p.numel() for p in candidate.model.parameters())
        if actual != cost.params:
            raise RuntimeError(f"extracted model has {actual} parameters but its masks count {cost.params}")
        valid, test = candidate.valid_error, candidate.test_error
        if valid is None or test is None:
            valid, test = (evaluate_error(ctx, candidate.model, split) for split in ("validation", "test"))
        row = ResultRow(
            run_id=self.run_id, kind=KIND, method=args.method, task=ctx.task.name, model=ctx.model_name,
            seed=args.seed, config=candidate.masks.to_dict(), valid_error=valid, test_error=test,
            runtime_s=time.perf_counter() - self.started, size_objective=args.size_objective,
            epoch=candidate.epoch, **cost.as_row_fields(),
        )
        self.rows.append(row)
        index = len(self.rows) - 1
        entry = {"row": index, "valid_error": valid, "test_error": test, "runtime_s": row.runtime_s,
                 "heads_per_layer": candidate.masks.heads_per_layer,
                 "units_per_layer": candidate.masks.units_per_layer, **candidate.details}
        if args.save_models:
            from supernet.extract import save_extracted

            folder = self.output_dir / MODELS_DIR / f"row-{index:03d}"
            save_extracted(candidate.model, folder, tokenizer=ctx.tokenizer, masks=candidate.masks)
            entry["model_dir"] = str(folder)
        self.details.append(entry)
        self.flush()
        return row

    def flush(self) -> None:
        write_atomic(mark_pareto(rows_to_frame(self.rows)), self.output_dir / RESULTS_FILE)
        write_json_atomic({"run_id": self.run_id, "method": self.ctx.args.method, "rows": self.details},
                          self.output_dir / DETAILS_FILE)


def run(args: argparse.Namespace) -> int:
    """Prune with one method, scoring the unpruned model first, and write the results table."""
    check_arguments(args)
    method = get_method(args.method)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run_id = args.run_id or default_run_id(args)
    write_run_info(output_dir, args, seed=args.seed, command_name="prune", run_id=run_id)
    ctx = prepare(args)
    writer = ResultsWriter(ctx=ctx, run_id=run_id, started=time.perf_counter())
    writer.add(Candidate(masks=SubNetworkMasks.full(ctx.shape), model=ctx.model, details={"unpruned": True}))
    for candidate in method.candidates(ctx):
        row = writer.add(candidate)
        tqdm.write(f"{method.name}: {row.param_fraction:.1%} params, {row.mac_fraction:.1%} MACs, "
                   f"valid error {row.valid_error:.4f}, test error {row.test_error:.4f}")
    print(f"{len(writer.rows)} rows in {output_dir / RESULTS_FILE}", flush=True)
    return 0
