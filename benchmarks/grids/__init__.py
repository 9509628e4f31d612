"""Experiment grids: their factors (:mod:`.spec`), the ones ``plm-nas experiments`` runs (:mod:`.definitions`) and
the steps they expand to; ``paper_slice`` runs the paper's budgets on one GPU (``benchmarks/gpu_slice.sh``)."""
from benchmarks.grids.definitions import CPU_GRID, CPU_STUDY, GRIDS, PAPER_GRID, get_grid
from benchmarks.grids.spec import DONE_MARKER, KINDS, MANIFEST_FILE, GridSpec, Step, expand, manifest, restrict

__all__ = ["CPU_GRID", "CPU_STUDY", "DONE_MARKER", "GRIDS", "KINDS", "MANIFEST_FILE", "PAPER_GRID", "GridSpec", "Step",
           "expand", "get_grid", "manifest", "restrict"]
