"""The pruning baselines: each proposes pruned models (candidates) of a fine-tuned model, from a :class:`PruneContext`."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from benchmarks.objectives import metric_fields, metrics_of_fields
from benchmarks.prune.context import Candidate, PruneContext, evaluate_scores
from benchmarks.results import task_metrics


def layer_drop_candidates(ctx: PruneContext) -> Iterator[Candidate]:
    """Drop k top layers and fine-tune what remains, for each k."""
    from baselines.pruning.layer_drop import layer_drop_schedule
    from supernet.extract import extract_sub_network

    schedule = layer_drop_schedule(ctx.shape, ctx.settings.layers_dropped)
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
            valid_metrics=metrics_of_fields(best, "valid", ctx.task.metrics),
            test_metrics=metrics_of_fields(best, "test", ctx.task.metrics),
        )


def fine_tune(ctx: PruneContext, model: PreTrainedModel) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Standard NAS's fine-tuning of one extracted model; returns the history and the best-validation epoch.

    Validation and test errors (and every task metric, ``valid_NAME``/``test_NAME``) are scored after every
    epoch; ``model`` ends with the best epoch's weights.
    """
    from benchmarks.finetuning import BestEpoch, FixedNetwork
    from benchmarks.finetuning import fine_tune as fine_tune_model
    from supernet.training import Trainer, TrainerConfig

    args = ctx.settings
    best: dict[str, Any] = {"valid_error": math.inf}
    best_state: dict[str, torch.Tensor] = {}

    def errors(trainer: Trainer, epoch: int) -> dict[str, Any]:
        valid, test = (evaluate_scores(ctx, model, split) for split in ("validation", "test"))
        return {"valid_error": float(valid["error"]), "test_error": float(test["error"]),
                **metric_fields("valid", task_metrics(valid)), **metric_fields("test", task_metrics(test))}

    def keep(trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        best.update(record, epoch=epoch)
        best_state.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    config = TrainerConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                           weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, seed=args.seed,
                           device=str(ctx.device), progress=ctx.progress, precision=ctx.precision.name)
    history = fine_tune_model(FixedNetwork(model, ctx.shape), ctx.loaders["train"], config, BestEpoch(errors, on_best=keep))
    model.load_state_dict(best_state)
    model.eval()
    return history, best


def head_prune_candidates(ctx: PruneContext) -> Iterator[Candidate]:
    """Michel et al.'s iterative head pruning, importance scored on the validation split."""
    from baselines.pruning.head_prune import HeadPruneConfig, head_pruning_steps
    from supernet.extract import extract_sub_network

    config = HeadPruneConfig(step_fraction=ctx.settings.step_fraction)
    steps = head_pruning_steps(ctx.model, ctx.loaders["validation"], config, progress=ctx.progress,
                               precision=ctx.precision)
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

    args = ctx.settings
    config = RFPConfig(seq_len=ctx.seq_len, rearrange=not args.no_rearrange, rescale=not args.no_rescale,
                       teacher=args.teacher, max_scale=args.max_scale, progress=ctx.progress)
    sample = ctx.loaders["sample"]
    started = time.perf_counter()
    grads = fisher_gradients(ctx.model, sample, progress=ctx.progress, precision=ctx.precision)
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
