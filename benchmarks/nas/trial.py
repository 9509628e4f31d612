"""One standard-NAS trial: fine-tune one sub-network of the pre-trained model on its own, report every epoch.

Syne Tune's ``LocalBackend`` runs this file as a script, one process per trial, as
``python REPO/benchmarks/nas/trial.py --st_config_json_filename TRIAL/config.json --st_checkpoint_dir DIR``
(``plm-nas nas`` puts the project on ``PYTHONPATH`` for the trials it starts; do the same to run one by hand).
The config (one key per hyperparameter, 9k keys in the ``large`` space) comes as a JSON file rather than on
the command line. Everything else a trial needs (model, task, optimisation protocol, threads) is in a
:class:`TrialSettings` JSON file written once by ``plm-nas nas``, named by ``--settings`` or, as the backend
starts trials, by the environment variable ``PLM_NAS_TRIAL_SETTINGS``.

The trial extracts the sub-network from the pre-trained model (a physically smaller model computing exactly
that sub-network, faster on CPU than masking), fine-tunes it with AdamW and a linear schedule, and after every
epoch reports ``epoch``, ``valid_error``, ``test_error``, every task metric of both splits (``valid_f1``,
``test_accuracy``, ...) and the cost fields (the size objective among them) through ``syne_tune.Reporter``.
With ``save_models`` it keeps the best-validation epoch's model in ``TRIAL/best_model`` (with ``trial.json``),
which ``plm-nas export`` copies.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from baselines.searchers.ask_tell import plain_config
from benchmarks.artifacts import BEST_MODEL_DIR, TRIAL_INFO_FILE
from benchmarks.files import write_folder_atomic, write_json_atomic
from benchmarks.objectives import CostFields, check_size_objective, masks_cost, metric_fields, metrics_of_fields
from benchmarks.tasks.loaders import DataSettings

TRIAL_SETTINGS_ENV = "PLM_NAS_TRIAL_SETTINGS"
EPOCH_PAUSE_ENV = "PLM_NAS_TRIAL_EPOCH_PAUSE_S"  # seconds a trial waits after each report (tests of interruption)
CONFIG_JSON_ARG = "st_config_json_filename"  # syne_tune.constants.ST_CONFIG_JSON_FNAME_ARG
CHECKPOINT_DIR_ARG = "st_checkpoint_dir"  # syne_tune.constants.ST_CHECKPOINT_DIR

Report = Callable[..., None]


@dataclass(frozen=True)
class TrialProtocol:
    """How every trial fine-tunes its sub-network, and on which examples (the defaults are the paper's).

    ``plm-nas nas`` parses these options once into :class:`~benchmarks.nas.common.NasSettings`, which hands
    them on unchanged to :class:`TrialSettings`.
    """

    dataset_seed: int = 0
    epochs: int = 5
    lr: float = 5e-5
    batch_size: int = 8
    eval_batch_size: int = 32
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    max_length: int = 128
    max_train_samples: int | None = None
    max_valid_samples: int | None = None
    max_test_samples: int | None = None
    min_train_words: int | None = None
    precision: str = "fp32"  # resolved by `plm-nas nas` for the trials' device; runs from before it were fp32

    def data(self, data_dir: str | None) -> DataSettings:
        """The examples every trial reads from ``data_dir``, and how they are batched."""
        return DataSettings(data_dir=data_dir, dataset_seed=self.dataset_seed,
                            max_train_samples=self.max_train_samples, max_valid_samples=self.max_valid_samples,
                            max_test_samples=self.max_test_samples, max_length=self.max_length,
                            batch_size=self.batch_size, eval_batch_size=self.eval_batch_size,
                            min_train_words=self.min_train_words)


PROTOCOL_FIELDS = tuple(f.name for f in fields(TrialProtocol))


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one standard-NAS run shares (the config is what differs).

    Written as flat JSON (the protocol's fields beside the others), as ``trial_settings.json`` and in each
    saved model's ``trial.json``, so that runs written before the protocol was its own class still resume.
    """

    model: str
    task: str
    search_space: str
    size_objective: str = "param_fraction"
    data_dir: str | None = None
    seed: int = 0
    protocol: TrialProtocol = TrialProtocol()
    seq_len: int = 128
    threads: int = 1
    device: str = "cpu"
    save_models: bool = False
    task_definition: dict[str, Any] | None = None  # your own data (files with SHA-256); None: registered ``task``
    latency_table: str | None = None  # a latency table file: every epoch reports predicted latency too

    def __post_init__(self) -> None:
        check_size_objective(self.size_objective)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    def data(self) -> DataSettings:
        """The examples every trial reads, and how they are batched."""
        return self.protocol.data(self.data_dir)

    def to_dict(self) -> dict[str, Any]:
        """The flat record: the protocol's fields beside the others."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "protocol"}
        return {**record, **asdict(self.protocol)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "TrialSettings":
        """The settings of a flat record (:meth:`to_dict`)."""
        protocol = TrialProtocol(**{key: value for key, value in record.items() if key in PROTOCOL_FIELDS})
        return cls(**{key: value for key, value in record.items() if key not in PROTOCOL_FIELDS}, protocol=protocol)

    def write(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(self.to_dict(), path)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "TrialSettings":
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class EpochResult:
    """What a trial reports after one epoch."""

    epoch: int
    valid_error: float
    test_error: float
    cost: CostFields
    valid_metrics: dict[str, float] = field(default_factory=dict)  # every task metric, e.g. {"f1": .., "accuracy": ..}
    test_metrics: dict[str, float] = field(default_factory=dict)

    def scores(self) -> dict[str, float]:
        """The epoch's errors and task metrics as flat fields (``valid_error``, ``valid_f1``, ...)."""
        return {"valid_error": self.valid_error, "test_error": self.test_error,
                **metric_fields("valid", self.valid_metrics), **metric_fields("test", self.test_metrics)}

    def report_fields(self) -> dict[str, Any]:
        return {"epoch": self.epoch, **self.scores(), **self.cost.as_row_fields()}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], cost: CostFields, metrics: Sequence[str]) -> "EpochResult":
        """An epoch back from its history record or report (an older one has no task metrics)."""
        return cls(epoch=int(fields["epoch"]), valid_error=float(fields["valid_error"]),
                   test_error=float(fields["test_error"]), cost=cost,
                   valid_metrics=metrics_of_fields(fields, "valid", metrics),
                   test_metrics=metrics_of_fields(fields, "test", metrics))


def search_space_part(config: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The search-space entries of a trial's config (entries a scheduler may add beside them are dropped)."""
    wanted = set(keys)
    return plain_config({key: value for key, value in config.items() if key in wanted})


def save_model_atomic(model: Any, tokenizer: Any, masks: Any, info: Mapping[str, Any], folder: Path) -> Path:
    """Save an extracted model with ``trial.json`` so that a trial stopped while saving keeps the previous one."""
    from supernet.extract import save_extracted

    def fill(staging: Path) -> None:
        save_extracted(model, staging, tokenizer=tokenizer, masks=masks)
        write_json_atomic(dict(info), staging / TRIAL_INFO_FILE)

    return write_folder_atomic(folder, fill)


def run_trial(
    settings: TrialSettings,
    config: Mapping[str, Any],
    report: Report,
    trial_dir: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    report_restored: bool = False,
) -> list[EpochResult]:
    """Fine-tune the sub-network ``config`` of the pre-trained model, calling ``report(**fields)`` every epoch.

    With ``checkpoint_dir`` the trainer saves its exact state there after every epoch, before ``report`` is
    called (so a backend can attach that checkpoint to the report); ``resume=True`` continues from it, and the
    returned list then holds only the epochs trained in this call. ``report_restored`` first reports again the
    epochs the checkpoint holds (a killed backend may not have seen the last of them).
    """
    # Imported here: only a running trial needs them, not `plm-nas nas`, which imports TrialSettings.
    from benchmarks.finetuning import BestEpoch, FixedNetwork, fine_tune, name_labels
    from benchmarks.results import task_metrics
    from benchmarks.tasks.definition import task_from_definition
    from benchmarks.tasks.loaders import task_loaders
    from benchmarks.tasks.metrics import metrics_fn
    from search_spaces import get_search_space
    from search_spaces.latency import LatencyTable
    from supernet.evaluation import evaluate
    from supernet.extract import extract_sub_network
    from supernet.loading import load_model, load_tokenizer, model_shape, resolve_device
    from supernet.precision import Precision
    from supernet.training import Trainer, TrainerConfig, seed_everything

    torch.set_num_threads(settings.threads)
    task = task_from_definition(settings.task_definition or {"name": settings.task}, where="this NAS run")
    device = resolve_device(settings.device)
    seed_everything(settings.seed)  # the classifier head is initialised the same way in every trial
    pretrained = load_model(settings.model, head=task.head, num_labels=task.num_labels,
                            problem_type=task.problem_type, device=device)
    name_labels(pretrained, task)  # extracted and saved trial models carry the real class names
    shape = model_shape(pretrained)
    space = get_search_space(settings.search_space, shape)
    config = search_space_part(config, space.keys)
    masks = space.to_masks(config)
    latency = LatencyTable.read(settings.latency_table) if settings.latency_table else None
    cost = masks_cost(shape, masks, seq_len=settings.seq_len, latency=latency)
    model = extract_sub_network(pretrained, masks)
    del pretrained
    tokenizer = load_tokenizer(settings.model)
    loaders = task_loaders(task, tokenizer, settings.data(), seed=settings.seed)
    score = metrics_fn(task)
    precision = Precision(settings.protocol.precision, device.type)
    results: list[EpochResult] = []
    best_dir = Path(trial_dir) / BEST_MODEL_DIR if settings.save_models and trial_dir is not None else None

    def errors(trainer: Trainer, epoch: int) -> dict[str, Any]:
        valid = evaluate(trainer.supernet.model, loaders["validation"], metrics_fn=score, precision=precision).metrics
        test = evaluate(trainer.supernet.model, loaders["test"], metrics_fn=score, precision=precision).metrics
        results.append(EpochResult(epoch=epoch, valid_error=float(valid["error"]), test_error=float(test["error"]),
                                   cost=cost, valid_metrics=task_metrics(valid), test_metrics=task_metrics(test)))
        return results[-1].scores()

    def keep_model(trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        if best_dir is not None:
            info = {"config": dict(config), "settings": settings.to_dict(), **results[-1].report_fields()}
            save_model_atomic(trainer.supernet.model, tokenizer, masks, info, best_dir)

    def report_epoch(trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        report(**results[-1].report_fields())  # once the epoch's checkpoint exists

    def report_history(trainer: Trainer) -> None:
        print(f"resumed after epoch {trainer.epoch} from {checkpoint_dir}", flush=True)
        if report_restored:
            for record in trainer.history:
                report(**EpochResult.from_fields(record, cost, task.metrics).report_fields())

    protocol = settings.protocol
    config_ = TrainerConfig(epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                            weight_decay=protocol.weight_decay, warmup_ratio=protocol.warmup_ratio,
                            seed=settings.seed, device=str(device), progress=False, precision=precision.name)
    fine_tune(FixedNetwork(model, shape), loaders["train"], config_,
              BestEpoch(errors, on_best=keep_model, on_saved=report_epoch, on_restored=report_history),
              checkpoint_dir=checkpoint_dir, resume=resume)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one standard-NAS trial (started by Syne Tune's LocalBackend)")
    parser.add_argument(f"--{CONFIG_JSON_ARG}", required=True, help="JSON file with the trial's config")
    parser.add_argument(f"--{CHECKPOINT_DIR_ARG}", default=None,
                        help="set by Syne Tune: the trial's state is saved there after every epoch, and restored")
    parser.add_argument("--settings", default=os.environ.get(TRIAL_SETTINGS_ENV),
                        help=f"TrialSettings JSON (default: ${TRIAL_SETTINGS_ENV})")
    args = parser.parse_args(argv)
    if not args.settings:
        parser.error(f"no trial settings: pass --settings or set {TRIAL_SETTINGS_ENV}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from syne_tune import Reporter

    from benchmarks.verbosity import configure_output

    configure_output()  # quiet loading, unless the command that started the trial was run with --verbose
    args = parse_args(argv)
    settings = TrialSettings.read(args.settings)
    config_path = Path(getattr(args, CONFIG_JSON_ARG))
    config = json.loads(config_path.read_text())
    reporter = Reporter()
    pause = float(os.environ.get(EPOCH_PAUSE_ENV, "0"))

    def report(**fields: Any) -> None:
        reporter(**fields)
        time.sleep(pause)

    checkpoint_dir = getattr(args, CHECKPOINT_DIR_ARG)
    # a trial restarted by `plm-nas nas --resume` finds its checkpoint copied there, and reports its epochs again
    run_trial(settings, config, report, trial_dir=config_path.parent, checkpoint_dir=checkpoint_dir,
              resume=checkpoint_dir is not None, report_restored=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
