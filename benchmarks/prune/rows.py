"""A pruning run's results table and per-row details, rewritten after every scored candidate."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.files import write_json_atomic
from benchmarks.objectives import masks_cost
from benchmarks.prune.context import Candidate, PruneContext, evaluate_scores
from benchmarks.results import RESULTS_FILE, ResultRow, mark_pareto, rows_to_frame, task_metrics, write_atomic

DETAILS_FILE = "prune.json"
MODELS_DIR = "models"
KIND = "baseline"


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
        return Path(self.ctx.settings.output_dir)

    def add(self, candidate: Candidate) -> ResultRow:
        ctx, args = self.ctx, self.ctx.settings
        cost = masks_cost(ctx.shape, candidate.masks, seq_len=ctx.seq_len, latency=ctx.latency)
        actual = sum(p.numel() for p in candidate.model.parameters())
        if actual != cost.params:
            raise RuntimeError(f"extracted model has {actual} parameters but its masks count {cost.params}")
        valid, test = candidate.valid_error, candidate.test_error
        valid_metrics, test_metrics = candidate.valid_metrics, candidate.test_metrics
        if valid is None or test is None:
            scores = {split: evaluate_scores(ctx, candidate.model, split) for split in ("validation", "test")}
            valid, test = (float(scores[split]["error"]) for split in ("validation", "test"))
            valid_metrics, test_metrics = (task_metrics(scores[split]) for split in ("validation", "test"))
        row = ResultRow(
            run_id=self.run_id, kind=KIND, method=args.method, task=ctx.task.name, model=ctx.model_name,
            seed=args.seed, config=candidate.masks.to_dict(), valid_error=valid, test_error=test,
            runtime_s=time.perf_counter() - self.started, size_objective=args.size_objective,
            epoch=candidate.epoch, valid_metrics=valid_metrics, test_metrics=test_metrics,
            precision=ctx.precision.name, **cost.as_row_fields(),
        )
        self.rows.append(row)
        index = len(self.rows) - 1
        entry = {"row": index, "valid_error": valid, "test_error": test, "valid_metrics": dict(valid_metrics),
                 "test_metrics": dict(test_metrics), "runtime_s": row.runtime_s,
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
        write_json_atomic({"run_id": self.run_id, "method": self.ctx.settings.method, "rows": self.details},
                          self.output_dir / DETAILS_FILE)
