"""What a grid is (its factors and fixed options) and how it expands to ``plm-nas`` steps with output folders.

Folders below the grid's root, one per step:

* ``supernets/TASK/MODEL/SPACE/STRATEGY/seedS`` (``train-supernet``),
* ``weight-sharing/TASK/MODEL/SPACE/STRATEGY/SEARCHER/seedS`` (``search`` on that super-network), or, for a grid
  whose searches vary their seed on fixed super-networks (``supernet_seeds``),
  ``weight-sharing/TASK/MODEL/SPACE/STRATEGY/SEARCHER/supernetK/seedS`` (search seed S on super-network seed K),
* ``standard/TASK/MODEL/SPACE/SEARCHER/seedS`` (``nas``),
* ``finetuned/TASK/MODEL/seedS`` (``finetune``, the pruning baselines' starting point) and
  ``baselines/TASK/MODEL/METHOD/seedS`` (``prune``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

DONE_MARKER = "DONE"
MANIFEST_FILE = "grid.json"  # at the grid's root: what a report needs to know of the grid beyond its folders
KINDS: tuple[str, ...] = ("ws", "nas", "prune")  # weight-sharing NAS, standard NAS, pruning baselines


@dataclass(frozen=True)
class GridSpec:
    """The factors of a grid and the fixed options each kind of step gets.

    ``parts`` are further grids expanded after this one (e.g. a strategy comparison on one task); a step that
    an earlier part already has (same folder) is not repeated.
    """

    name: str
    description: str
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    search_spaces: tuple[str, ...]
    strategies: tuple[str, ...]
    ws_searchers: tuple[str, ...]
    nas_searchers: tuple[str, ...]
    seeds: tuple[int, ...]
    supernet_args: tuple[str, ...] = ()
    search_args: tuple[str, ...] = ()
    nas_args: tuple[str, ...] = ()
    nas_budget_s: dict[str, float] = field(default_factory=dict)  # per task; "default" for the rest
    kinds: tuple[str, ...] = ("ws", "nas")
    task_args: dict[str, tuple[str, ...]] = field(default_factory=dict)  # data options of one task, every step
    finetune_args: tuple[str, ...] = ()
    prune_methods: dict[str, tuple[str, ...]] = field(default_factory=dict)  # method -> its options
    prune_args: tuple[str, ...] = ()  # options of every prune step
    parts: tuple[GridSpec, ...] = ()
    # Super-network seeds of a grid that compares searchers: each is trained once, and every seed of ``seeds`` is
    # a searcher seed on each of them (empty: one super-network per seed, searched with that seed).
    supernet_seeds: tuple[int, ...] = ()
    # Start every super-network from the grid's plain fine-tuning of its task, model and seed (``--init-from``),
    # which then runs first; the fine-tuned model is also the pruning baselines' starting point.
    supernet_from_finetuned: bool = False
    # ``--min-train-words`` of every super-network: 0 (every training example) as the grids were run before
    # SST-2's super-networks trained on its sentence-like examples by default; None: the command's default.
    supernet_min_train_words: int | None = 0


FACTORS: tuple[str, ...] = ("tasks", "models", "search_spaces", "strategies", "ws_searchers", "nas_searchers", "seeds")


@dataclass(frozen=True)
class Step:
    """One ``plm-nas`` command of a grid with its output folder."""

    key: str
    command: tuple[str, ...]
    output_dir: Path
    resumable: bool
    needs: Path | None = None  # a folder that an earlier step must have finished

    @property
    def done(self) -> bool:
        return (self.output_dir / DONE_MARKER).is_file()

    @property
    def started(self) -> bool:
        """Begun but not finished: the next run of the grid resumes (or restarts) it."""
        return not self.done and self.output_dir.exists()


def _model_tag(model: str) -> str:
    """Folder name of a model: a local folder's name, or the hub name with its organisation ("org-name")."""
    if not model:
        return "minilm"
    return Path(model).name if Path(model).exists() else model.replace("/", "-")


def restrict(grid: GridSpec, **factors: Sequence | None) -> GridSpec:
    """The grid with some factors replaced (``None`` keeps the grid's); unknown values are kept as given.

    The grid's ``parts`` are *narrowed* instead: each keeps only the given values it has, and a part left
    without a value of some factor is dropped (``tasks=["sst2"]`` drops a comparison made on STS-B alone).
    """
    unknown = set(factors) - set(FACTORS)
    if unknown:
        raise TypeError(f"unknown grid factors: {', '.join(sorted(unknown))}")
    changes = {name: tuple(values) for name, values in factors.items() if values}
    parts = []
    for part in grid.parts:
        narrowed = {name: tuple(v for v in getattr(part, name) if v in values) for name, values in changes.items()}
        if all(narrowed.values()):
            parts.append(replace(part, **narrowed))
    return replace(grid, **changes, parts=tuple(parts))


def _budget(grid: GridSpec, task: str) -> float:
    return grid.nas_budget_s.get(task, grid.nas_budget_s.get("default", 3600))


def _ws_steps(grid: GridSpec, root: Path, data_args: tuple[str, ...]) -> list[Step]:
    if grid.supernet_seeds:
        return _searcher_seed_steps(grid, root, data_args)
    steps: list[Step] = []
    for task, model, space, strategy, seed in itertools.product(
        grid.tasks, grid.models, grid.search_spaces, grid.strategies, grid.seeds
    ):
        base = f"{task}/{_model_tag(model)}/{space}"
        steps += _supernet_steps(grid, root, data_args, task, model, space, strategy, seed)
        supernet_dir = steps[-1].output_dir
        for searcher in grid.ws_searchers:
            out = root / "weight-sharing" / base / strategy / searcher / f"seed{seed}"
            steps.append(Step(
                key=f"search {base}/{strategy}/{searcher}/seed{seed}",
                command=("search", "--supernet", str(supernet_dir / "supernet"), "--searcher", searcher,
                         "--seed", str(seed), "--output-dir", str(out), *grid.search_args),
                output_dir=out, resumable=True, needs=supernet_dir,
            ))
    return steps


def _finetuned_dir(root: Path, task: str, model: str, seed: int) -> Path:
    return root / "finetuned" / task / _model_tag(model) / f"seed{seed}"


def _supernet_steps(grid: GridSpec, root: Path, data_args: tuple[str, ...], task: str, model: str, space: str,
                    strategy: str, seed: int) -> list[Step]:
    """A super-network's step, after the plain fine-tuning it starts from where the grid says so (a step the
    pruning expander may also emit: expansion keeps one per folder), so any choice of kinds runs what it needs."""
    supernet = _supernet_step(grid, root, data_args, task, model, space, strategy, seed)
    if not grid.supernet_from_finetuned:
        return [supernet]
    return [_finetune_step(grid, root, data_args, task, model, seed), supernet]


def _min_words(value: int | None) -> tuple[str, ...]:
    return () if value is None else ("--min-train-words", str(value))


def _supernet_step(grid: GridSpec, root: Path, data_args: tuple[str, ...], task: str, model: str, space: str,
                   strategy: str, seed: int) -> Step:
    base = f"{task}/{_model_tag(model)}/{space}"
    supernet_dir = root / "supernets" / base / strategy / f"seed{seed}"
    finetuned = _finetuned_dir(root, task, model, seed) if grid.supernet_from_finetuned else None
    # without a grid fine-tuning: from the pre-trained model, as the grids were defined (not the command's default)
    init = ("--init-from", str(finetuned / "best_model") if finetuned is not None else "pretrained")
    return Step(
        key=f"supernet {base}/{strategy}/seed{seed}",
        command=("train-supernet", "--model", model, "--task", task, "--search-space", space, "--strategy", strategy,
                 "--seed", str(seed), "--output-dir", str(supernet_dir), *data_args, *grid.task_args.get(task, ()),
                 *grid.supernet_args, *init, *_min_words(grid.supernet_min_train_words)),
        output_dir=supernet_dir, resumable=True, needs=finetuned,
    )


def _searcher_seed_steps(grid: GridSpec, root: Path, data_args: tuple[str, ...]) -> list[Step]:
    """Super-networks of ``grid.supernet_seeds``, each searched by every searcher with every seed of ``grid.seeds``
    (searches of one seed across searchers first, so a partial grid compares all searchers on its seeds)."""
    steps: list[Step] = []
    for task, model, space, strategy, supernet_seed in itertools.product(
        grid.tasks, grid.models, grid.search_spaces, grid.strategies, grid.supernet_seeds
    ):
        steps += _supernet_steps(grid, root, data_args, task, model, space, strategy, supernet_seed)
        supernet = steps[-1]
        base = f"{task}/{_model_tag(model)}/{space}"
        for seed, searcher in itertools.product(grid.seeds, grid.ws_searchers):
            out = root / "weight-sharing" / base / strategy / searcher / f"supernet{supernet_seed}" / f"seed{seed}"
            run_id = f"ws-{strategy}-{searcher}-{space}-{task}-supernet{supernet_seed}-seed{seed}"
            steps.append(Step(
                key=f"search {base}/{strategy}/{searcher}/supernet{supernet_seed}/seed{seed}",
                command=("search", "--supernet", str(supernet.output_dir / "supernet"), "--searcher", searcher,
                         "--seed", str(seed), "--run-id", run_id, "--output-dir", str(out), *grid.search_args),
                output_dir=out, resumable=True, needs=supernet.output_dir,
            ))
    return steps


def _nas_steps(grid: GridSpec, root: Path, data_args: tuple[str, ...]) -> list[Step]:
    steps: list[Step] = []
    for task, model, space, searcher, seed in itertools.product(
        grid.tasks, grid.models, grid.search_spaces, grid.nas_searchers, grid.seeds
    ):
        base = f"{task}/{_model_tag(model)}/{space}"
        out = root / "standard" / base / searcher / f"seed{seed}"
        steps.append(Step(
            key=f"nas {base}/{searcher}/seed{seed}",
            command=("nas", "--model", model, "--task", task, "--search-space", space, "--searcher", searcher,
                     "--seed", str(seed), "--output-dir", str(out), "--max-wallclock", f"{_budget(grid, task):g}",
                     *data_args, *grid.task_args.get(task, ()), *grid.nas_args),
            output_dir=out, resumable=True,
        ))
    return steps


def _finetune_step(grid: GridSpec, root: Path, data_args: tuple[str, ...], task: str, model: str, seed: int) -> Step:
    """Plain fine-tuning of a task, model and seed (the pruning baselines' start and the recipe's super-networks')."""
    finetuned = _finetuned_dir(root, task, model, seed)
    return Step(
        key=f"finetune {task}/{_model_tag(model)}/seed{seed}",
        command=("finetune", "--model", model, "--task", task, "--seed", str(seed), "--output-dir",
                 str(finetuned), *data_args, *grid.task_args.get(task, ()), *grid.finetune_args),
        output_dir=finetuned, resumable=True,
    )


def _prune_steps(grid: GridSpec, root: Path, data_args: tuple[str, ...]) -> list[Step]:
    """Per task, model and seed: plain fine-tuning, then every pruning baseline from its best model."""
    steps: list[Step] = []
    for task, model, seed in itertools.product(grid.tasks, grid.models, grid.seeds):
        base = f"{task}/{_model_tag(model)}"
        finetuned = _finetuned_dir(root, task, model, seed)
        task_data = (*data_args, *grid.task_args.get(task, ()))
        steps.append(_finetune_step(grid, root, data_args, task, model, seed))
        for method, method_args in grid.prune_methods.items():
            out = root / "baselines" / base / method / f"seed{seed}"
            # a pruning run is minutes long and has no checkpoints: an unfinished one starts again
            steps.append(Step(
                key=f"prune {base}/{method}/seed{seed}",
                command=("prune", "--method", method, "--finetuned", str(finetuned / "best_model"), "--task", task,
                         "--seed", str(seed), "--output-dir", str(out), *task_data, *grid.prune_args,
                         *method_args),
                output_dir=out, resumable=False, needs=finetuned,
            ))
    return steps


EXPANDERS = {"ws": _ws_steps, "nas": _nas_steps, "prune": _prune_steps}


def expand(grid: GridSpec, root: Path, data_args: Sequence[str] = (), kinds: Sequence[str] | None = None) -> list[Step]:
    """All steps of a grid and its parts in run order (each super-network before its searches, each fine-tuned
    model before its pruning runs); ``kinds`` (default: the grid's own) picks weight-sharing, standard NAS and
    pruning steps. A step already expanded by an earlier part is not repeated."""
    unknown = set(kinds or ()) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown step kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    steps: dict[Path, Step] = {}
    for part in (grid, *grid.parts):
        # plain fine-tuning first where super-networks start from it
        order = ("prune", "ws", "nas") if part.supernet_from_finetuned else KINDS
        for kind in order:
            if kind in part.kinds and (kinds is None or kind in kinds):
                for step in EXPANDERS[kind](part, root, tuple(data_args)):
                    steps.setdefault(step.output_dir, step)
    return list(steps.values())



def manifest(grid: GridSpec) -> dict:
    """The grid as a report reads it (``grid.json``): the main runs' strategies and search spaces, on which the
    searchers are compared, and the factor comparisons its parts make (factor, values, fixed factors, tasks and
    searchers), so a report tells comparison runs from main ones without knowing the grid's code."""
    comparisons = []
    for part in grid.parts:
        factors = {"strategy": part.strategies, "search_space": part.search_spaces}
        for factor, values in factors.items():
            if len(values) > 1:
                fixed = {name: list(other) for name, other in factors.items() if name != factor}
                comparisons.append({"factor": factor, "values": list(values), "fixed": fixed,
                                    "tasks": list(part.tasks), "searchers": list(part.ws_searchers)})
    return {"grid": grid.name, "main": {"strategy": list(grid.strategies), "search_space": list(grid.search_spaces)},
            "comparisons": comparisons}
