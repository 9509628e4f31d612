"""``plm-nas search --backend ray``: sub-networks of a weight-sharing search scored on Ray actors.

Each actor loads one copy of the super-network and the validation and test data (the same
:class:`benchmarks.commands.search.ScorerSpec` the single-process search uses, so a sub-network gets the same error
wherever it is scored). The search loop asks the searcher for one batch of ``--eval-workers`` sub-networks,
spreads it over the actors and tells the results in ask order. Scoring is pure, so an actor that dies is
restarted and its calls retried (``max_restarts``/``max_task_retries``).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

from benchmarks.ray_cluster import ray_session

Config = dict[str, Any]
MAX_RESTARTS = 2


class SubNetworkEvaluator:
    """One copy of the super-network and data; scores configs on a split (the body of a Ray actor)."""

    def __init__(self, spec: Any, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.scorer = spec.build()

    def scores(self, configs: Sequence[Config], split: str) -> list[dict[str, float]]:
        """Every task metric (with ``main`` and ``error``) of each config on ``split``."""
        return [self.scorer.scores(config, split) for config in configs]

    def pid(self) -> int:
        return os.getpid()


@dataclass
class EvaluatorPool:
    """Ray actors scoring sub-networks; config i of a batch goes to actor i mod N, results come back in order."""

    actors: list[Any]

    def scores(self, configs: Sequence[Config], split: str) -> list[dict[str, float]]:
        import ray

        if not configs:
            return []
        count = len(self.actors)
        chunks = [list(configs[index::count]) for index in range(count)]
        futures = [actor.scores.remote(chunk, split) for actor, chunk in zip(self.actors, chunks) if chunk]
        answers = ray.get(futures)
        results: list[dict[str, float]] = [{} for _ in configs]
        for index, answer in enumerate(answers):
            results[index::count] = answer
        return results

    def pids(self) -> list[int]:
        import ray

        return ray.get([actor.pid.remote() for actor in self.actors])

    @classmethod
    @contextlib.contextmanager
    def session(cls, spec: Any, workers: int, address: str | None = None, cpus: int = 1,
                gpus: float | None = None) -> Iterator["EvaluatorPool"]:
        """Connect to Ray (or start a loopback-only local instance) and start ``workers`` evaluator actors.

        ``gpus=None``: one GPU per actor when the cluster has that many, else none.
        """
        if workers < 1 or cpus < 1 or (gpus is not None and gpus < 0):
            raise ValueError(f"need >= 1 evaluation worker with >= 1 CPU and >= 0 GPUs, got {workers}, {cpus}, {gpus}")
        local_cpus = max(os.cpu_count() or 1, workers * cpus)  # a local instance never leaves actors waiting
        with ray_session(address, num_cpus=None if address else local_cpus):
            import ray

            available = ray.cluster_resources()
            if gpus is None:
                gpus = 1.0 if available.get("GPU", 0) >= workers else 0.0
            if gpus > 0:
                spec = replace(spec, device="cuda")
            if available.get("CPU", 0) < workers * cpus or available.get("GPU", 0) < workers * gpus:
                raise ValueError(f"{workers} evaluation workers need {workers * cpus} CPUs and {workers * gpus} GPUs; "
                                 f"the Ray cluster has {available.get('CPU', 0)} and {available.get('GPU', 0)}")
            remote = ray.remote(SubNetworkEvaluator).options(
                num_cpus=cpus, num_gpus=gpus, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS
            )
            actors = [remote.remote(spec, cpus) for _ in range(workers)]
            try:
                yield cls(actors)
            finally:
                for actor in actors:
                    ray.kill(actor)
