"""How much does rewiring alone give? Probe sub-networks of a fine-tuned model before and after it, no training.

``python -m benchmarks.studies.rewiring --model runs/ft/best_model --task sst2 --max-train-samples 5000``
scores the probe sub-networks (``supernet.probes``) of the model on 512 validation examples, reorders every
layer's heads and units by the diagonal Fisher information of their gates on 256 training examples, and
scores them again. The full network is unchanged by construction; the prefixes keep the important parts.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader, Subset

from baselines.pruning.rfp.fisher import fisher_importance
from benchmarks.tasks.loaders import DataSettings, task_loaders
from benchmarks.tasks.metrics import metrics_fn
from benchmarks.tasks.registry import get_task
from search_spaces import get_search_space
from supernet.evaluation import evaluate
from supernet.loading import load_model, load_tokenizer
from supernet.model import SuperNetwork
from supernet.probes import probe_sub_networks
from supernet.rewire import rewire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a fine-tuned model folder (finetune's best_model/)")
    parser.add_argument("--task", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--max-train-samples", type=int, default=None, help="as the model was fine-tuned")
    parser.add_argument("--score-examples", type=int, default=256)
    parser.add_argument("--search-space", default="small")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    model = load_model(args.model, head=task.head, num_labels=task.num_labels, problem_type=task.problem_type)
    data = DataSettings(data_dir=args.data_dir, max_train_samples=args.max_train_samples, max_valid_samples=512)
    loaders = task_loaders(task, load_tokenizer(args.model), data, splits=("train", "validation"))
    supernet = SuperNetwork(model)
    probes = probe_sub_networks(get_search_space(args.search_space, supernet.shape))
    score = metrics_fn(task)

    def probe_scores() -> dict[str, float]:
        return {name: round(evaluate(supernet, loaders["validation"], masks=probe.masks, metrics_fn=score)
                            .metrics["main"], 4) for name, probe in probes.items()}

    started = time.perf_counter()
    before = probe_scores()
    train = loaders["train"]
    sample = Subset(train.dataset, range(min(args.score_examples, len(train.dataset))))
    rewire(model, *fisher_importance(model, DataLoader(sample, batch_size=32, collate_fn=train.collate_fn)))
    after = probe_scores()
    print(json.dumps({"model": args.model, "task": task.name, "metric": task.main_metric, "before": before,
                      "after": after, "seconds": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
