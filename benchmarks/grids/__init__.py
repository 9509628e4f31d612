"""Experiment grids: their factors (:mod:`.spec`), the ones this project defines (:mod:`.definitions`) and the
steps they expand to. The ``plm-nas experiments`` command runs them."""
from benchmarks.grids.definitions import CPU_GRID, CPU_STUDY, GRIDS, PAPER_GRID, get_grid
from benchmarks.grids.spec import DONE_MARKER, KINDS, GridSpec, Step, expand, restrict

__all__ = ["CPU_GRID", "CPU_STUDY", "DONE_MARKER", "GRIDS", "KINDS", "PAPER_GRID", "GridSpec", "Step", "expand",
           "get_grid", "restrict"]
