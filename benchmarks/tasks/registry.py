"""The task registry: what each benchmark task reads, predicts and is scored with.

A :class:`TaskSpec` is pure data. It names the columns every loader normalises to, the model head and label
count, the metrics, and where the data comes from: the Hugging Face hub, a local copy in the original
layout (:class:`LocalFormat`), or, for a :func:`~benchmarks.tasks.custom.custom_task`, the user's own
CSV/TSV/JSON files.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HEADS = ("sequence-classification", "multiple-choice")
METRIC_NAMES = ("accuracy", "f1", "mcc", "pearson", "spearman")
LARGE_TASK_MAX_VALID_SAMPLES = 2048
LABEL = "label"  # the normalised label column of every split
GLUE_HUB_PATH = "nyu-mll/glue"
NLI_LABELS = {"entailment": 0, "not_entailment": 1}  # as Hugging Face glue/rte and glue/qnli
MNLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}  # as Hugging Face glue/mnli
LOCAL_READERS = ("tsv", "csv", "aclimdb")


@dataclass(frozen=True)
class LocalFormat:
    """Where a task sits in a local copy in its original layout, and how to parse it.

    ``columns`` maps each normalised column (text columns and ``"label"``) to its column in the file: a
    header name, or a position when the file has no header. ``label_map`` turns label strings into ids;
    without it labels are parsed as int (classification) or float (regression).
    """

    folder: str
    files: Mapping[str, str]  # split ("train", "test") -> file name inside ``folder``
    columns: Mapping[str, str | int]
    reader: str = "tsv"  # "tsv": GLUE files, quoting off; "csv": quoted CSV; "aclimdb": pos/neg folders
    header: bool = True
    label_map: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        if self.reader not in LOCAL_READERS:
            raise ValueError(f"unknown reader {self.reader!r}; choose from {', '.join(LOCAL_READERS)}")


@dataclass(frozen=True)
class TaskSpec:
    """Everything the loaders, the model head and the metrics need to know about one task.

    Splits are always normalised to ``text_columns + choice_columns + ("label",)``; ``label_column`` is
    where the label is read from in a hub dataset or a custom file.
    """

    name: str
    text_columns: tuple[str, ...]
    num_labels: int
    label_column: str = LABEL
    is_regression: bool = False
    head: str = "sequence-classification"
    main_metric: str = "accuracy"
    other_metrics: tuple[str, ...] = ()
    label_names: tuple[str, ...] = ()
    choice_columns: tuple[str, ...] = ()  # multiple choice: one column per candidate ending
    hub_path: str | None = None
    hub_name: str | None = None
    hub_test_split: str = "validation"  # the official dev set, our test set
    local: LocalFormat | None = None
    files: Mapping[str, str] | None = None  # custom task: split -> path of a CSV/TSV/JSON(L) file
    large: bool = False  # validation capped at LARGE_TASK_MAX_VALID_SAMPLES by default
    positive_label: int = 1  # the class id F1 scores (binary classification)
    # The super-network trains only on training examples of at least this many words unless told otherwise
    # (SST-2: its training split holds every phrase of its sentences, its test set whole sentences).
    supernet_min_train_words: int | None = None

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"task {self.name!r}: unknown head {self.head!r}; choose from {', '.join(HEADS)}")
        for metric in self.metrics:
            if metric not in METRIC_NAMES:
                raise ValueError(
                    f"task {self.name!r}: unknown metric {metric!r}; choose from {', '.join(METRIC_NAMES)}"
                )
        if not 1 <= len(self.text_columns) <= 2 and not self.choice_columns:
            raise ValueError(
                f"task {self.name!r}: a sequence-classification task takes one text or a text pair, "
                f"got {len(self.text_columns)} text columns {self.text_columns}"
            )
        if (self.head == "multiple-choice") != bool(self.choice_columns):
            raise ValueError(f"task {self.name!r}: choice_columns are needed exactly for the multiple-choice head")
        if self.is_regression and self.num_labels != 1:
            raise ValueError(f"task {self.name!r}: a regression task has num_labels=1, got {self.num_labels}")
        if not self.is_regression and not 0 <= self.positive_label < self.num_labels:
            raise ValueError(f"task {self.name!r}: positive_label {self.positive_label} is not a class id")

    @property
    def metrics(self) -> tuple[str, ...]:
        """Main metric first, then the others."""
        return (self.main_metric, *self.other_metrics)

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns of every normalised split."""
        return (*self.text_columns, *self.choice_columns, LABEL)

    @property
    def num_choices(self) -> int:
        return len(self.choice_columns)

    @property
    def problem_type(self) -> str:
        """The ``problem_type`` of the Hugging Face model config."""
        return "regression" if self.is_regression else "single_label_classification"

    @property
    def default_max_valid_samples(self) -> int | None:
        return LARGE_TASK_MAX_VALID_SAMPLES if self.large else None


def _glue(
    name: str,
    folder: str,
    text_columns: tuple[str, ...],
    file_columns: Mapping[str, str | int],
    label_names: tuple[str, ...],
    header: bool = True,
    label_map: Mapping[str, int] | None = None,
    test_file: str = "dev.tsv",
    **spec_fields: Any,
) -> TaskSpec:
    """A GLUE task: config ``name`` of nyu-mll/glue on the hub, or ``folder`` of the original GLUE TSV layout."""
    return TaskSpec(
        name=name,
        text_columns=text_columns,
        num_labels=1 if spec_fields.get("is_regression") else len(label_names),
        label_names=label_names,
        hub_path=GLUE_HUB_PATH,
        hub_name=name,
        local=LocalFormat(
            folder=folder,
            files={"train": "train.tsv", "test": test_file},
            columns=file_columns,
            header=header,
            label_map=label_map,
        ),
        **spec_fields,
    )


_SWAG_ENDINGS = ("ending0", "ending1", "ending2", "ending3")

_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _glue(
            "rte", "RTE", ("sentence1", "sentence2"),
            {"sentence1": "sentence1", "sentence2": "sentence2", LABEL: "label"},
            ("entailment", "not_entailment"), label_map=NLI_LABELS,
        ),
        _glue(
            "mrpc", "MRPC", ("sentence1", "sentence2"),
            {"sentence1": "#1 String", "sentence2": "#2 String", LABEL: "Quality"},
            ("not_equivalent", "equivalent"), main_metric="f1", other_metrics=("accuracy",),
        ),
        _glue(
            "cola", "CoLA", ("sentence",), {"sentence": 3, LABEL: 1},
            ("unacceptable", "acceptable"), header=False, main_metric="mcc", other_metrics=("accuracy",),
        ),
        _glue(
            "stsb", "STS-B", ("sentence1", "sentence2"),
            {"sentence1": "sentence1", "sentence2": "sentence2", LABEL: "score"},
            (), is_regression=True, main_metric="spearman", other_metrics=("pearson",),
        ),
        _glue(
            "sst2", "SST-2", ("sentence",), {"sentence": "sentence", LABEL: "label"},
            ("negative", "positive"), large=True, supernet_min_train_words=10,
        ),
        _glue(
            "qnli", "QNLI", ("question", "sentence"),
            {"question": "question", "sentence": "sentence", LABEL: "label"},
            ("entailment", "not_entailment"), label_map=NLI_LABELS, large=True,
        ),
        _glue(
            "mnli", "MNLI", ("premise", "hypothesis"),
            {"premise": "sentence1", "hypothesis": "sentence2", LABEL: "gold_label"},
            ("entailment", "neutral", "contradiction"), label_map=MNLI_LABELS, large=True,
            test_file="dev_matched.tsv", hub_test_split="validation_matched",
        ),
        _glue(
            "qqp", "QQP", ("question1", "question2"),
            {"question1": "question1", "question2": "question2", LABEL: "is_duplicate"},
            ("not_duplicate", "duplicate"), large=True, main_metric="f1", other_metrics=("accuracy",),
        ),
        TaskSpec(
            name="imdb",
            text_columns=("text",),
            num_labels=2,
            label_names=("neg", "pos"),
            hub_path="stanfordnlp/imdb",
            hub_test_split="test",
            local=LocalFormat(
                folder="aclImdb",
                files={"train": "train", "test": "test"},
                columns={"text": "text", LABEL: "label"},
                reader="aclimdb",
                label_map={"neg": 0, "pos": 1},
            ),
            large=True,
        ),
        TaskSpec(
            name="swag",
            text_columns=("sent1", "sent2"),
            choice_columns=_SWAG_ENDINGS,
            num_labels=len(_SWAG_ENDINGS),
            label_names=("0", "1", "2", "3"),
            head="multiple-choice",
            hub_path="allenai/swag",
            hub_name="regular",
            local=LocalFormat(
                folder="swag",
                files={"train": "train.csv", "test": "val.csv"},
                columns={col: col for col in ("sent1", "sent2", *_SWAG_ENDINGS, LABEL)},
                reader="csv",
            ),
            large=True,
        ),
    )
}

TASK_NAMES: tuple[str, ...] = tuple(_TASKS)
GLUE_TASKS: tuple[str, ...] = tuple(name for name, spec in _TASKS.items() if spec.hub_path == GLUE_HUB_PATH)


def _canonical(name: str) -> str:
    """``"SST-2"``, ``"sts_b"`` and ``"sst2"`` name the same task."""
    return re.sub(r"[-_\s]", "", name.lower())


def get_task(task: str | TaskSpec) -> TaskSpec:
    """The registered :class:`TaskSpec` of a task name; a :class:`TaskSpec` passes through."""
    if isinstance(task, TaskSpec):
        return task
    spec = _TASKS.get(_canonical(task))
    if spec is None:
        raise ValueError(
            f"unknown task {task!r}; choose from {', '.join(TASK_NAMES)}, or use your own data (--train-file, "
            "--test-file and --text-columns; custom_task() in Python)"
        )
    return spec
