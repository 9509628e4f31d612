"""Experiment grids beyond ``plm-nas experiments``: ``paper_slice`` (the paper's budgets on one GPU)."""
