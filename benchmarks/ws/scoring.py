"""Scoring sub-networks of a trained super-network: one no-gradient pass of the sliced sub-network per split,
giving every metric of the task (the error, 1 - main metric, is what the search minimises)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from torch.utils.data import DataLoader

from baselines.searchers.ask_tell import config_key
from benchmarks.artifacts import SuperNetSource, supernet_task
from benchmarks.objectives import CostFields, config_cost
from search_spaces import SearchSpace
from search_spaces.latency import LatencyTable
from supernet.model import SuperNetwork
from supernet.precision import Precision


class CollatedBatches:
    """A loader's batches, collated (padded) once and kept: scoring a hundred sub-networks on one split pads its
    examples once instead of a hundred times. Keeps the loader's sampler, whose order
    :func:`supernet.evaluation.evaluate` uses to return predictions in the dataset's order."""

    def __init__(self, loader: DataLoader) -> None:
        self.batches = list(loader)
        self.sampler = getattr(loader, "sampler", None)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass
class SubNetworkScorer:
    """Scores sub-networks of a super-network on the validation and test loaders.

    Scores (every task metric, with ``main`` and ``error``) are memoised by the sub-network's masks, so configs
    that select the same sub-network (all ``num_layers=0`` configs of ``small`` are the empty network) are
    evaluated once per split.
    """

    supernet: SuperNetwork
    space: SearchSpace
    loaders: Mapping[str, DataLoader]
    metrics_fn: Callable[..., Mapping[str, float]]
    seq_len: int
    size_objective: str
    precision: Precision = Precision()
    latency: LatencyTable | None = None
    _costs: dict[str, CostFields] = field(default_factory=dict, repr=False)
    _scores: dict[tuple[str, bytes], dict[str, float]] = field(default_factory=dict, repr=False)
    _batches: dict[str, "CollatedBatches"] = field(default_factory=dict, repr=False)

    def scores(self, config: Mapping[str, Any], split: str) -> dict[str, float]:
        """The task's metrics (with ``main`` and ``error``) of the sliced sub-network ``config`` on ``split``
        (one pass without gradients)."""
        from supernet.evaluation import evaluate

        masks = self.space.to_masks(config)
        key = (split, masks.heads.numpy().tobytes() + masks.units.numpy().tobytes())
        if key not in self._scores:
            if split not in self._batches:  # collated once: every sub-network is scored on the same batches
                self._batches[split] = CollatedBatches(self.loaders[split])
            result = evaluate(self.supernet, self._batches[split], masks=masks, metrics_fn=self.metrics_fn,
                              precision=self.precision)
            self._scores[key] = {name: float(value) for name, value in result.metrics.items()}
        return dict(self._scores[key])

    def error(self, config: Mapping[str, Any], split: str) -> float:
        """Error (1 - the main metric) of the sliced sub-network ``config`` on ``split``."""
        return self.scores(config, split)["error"]

    def cost(self, config: Mapping[str, Any]) -> CostFields:
        """Cost fields of a config (computed once per config)."""
        key = config_key(config)
        if key not in self._costs:
            self._costs[key] = config_cost(self.space, config, seq_len=self.seq_len, latency=self.latency)
        return self._costs[key]

    def size(self, config: Mapping[str, Any]) -> float:
        return self.cost(config).size(self.size_objective)


@dataclass(frozen=True)
class ScorerSpec:
    """How to build a :class:`SubNetworkScorer` from a super-network folder (in this process or a Ray actor)."""

    supernet: str
    device: str
    search_space: str
    data_dir: str | None
    dataset_seed: int
    max_length: int
    max_valid_samples: int | None
    max_test_samples: int | None
    batch_size: int
    seq_len: int
    size_objective: str
    precision: str = "fp32"  # resolved: fp32, bf16 or fp16
    latency_table: str | None = None  # a latency table file: rows get predicted latency (latency_ms, _fraction)

    def scoring(self) -> dict[str, Any]:
        """What decides a sub-network's recorded errors and size (device and batch size do not; the precision
        does, a little)."""
        return {key: value for key, value in asdict(self).items() if key not in ("device", "batch_size")}

    def build(self, source: SuperNetSource | None = None) -> SubNetworkScorer:
        """Load the data (and the super-network unless ``source`` is given) and return the scorer."""
        from benchmarks.tasks.loaders import DataSettings, task_loaders
        from benchmarks.tasks.metrics import metrics_fn
        from search_spaces import get_search_space

        source = source or SuperNetSource.load(self.supernet, device=self.device)
        task = supernet_task(source.info, source.folder)
        data = DataSettings(data_dir=self.data_dir, dataset_seed=self.dataset_seed, max_length=self.max_length,
                            max_valid_samples=self.max_valid_samples, max_test_samples=self.max_test_samples,
                            batch_size=self.batch_size, eval_batch_size=self.batch_size)
        loaders = task_loaders(task, source.tokenizer, data, splits=("validation", "test"))
        space = get_search_space(self.search_space, source.shape)
        latency = None
        if self.latency_table is not None:
            latency = LatencyTable.read(self.latency_table)
            latency.check_shape(source.shape)
        device = next(source.model.parameters()).device
        return SubNetworkScorer(SuperNetwork(source.model), space, loaders, metrics_fn(task), seq_len=self.seq_len,
                                size_objective=self.size_objective, precision=Precision(self.precision, device.type),
                                latency=latency)
