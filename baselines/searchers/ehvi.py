"""Expected hypervolume improvement (EHVI) with BoTorch, robust where Syne Tune 0.16's is not.

Syne Tune 0.16's EHVI builds float32 tensors for a float64 model (crashing with BoTorch 0.18) and puts its
reference point at 2 on raw objective values, which is meaningless for errors and size fractions in [0, 1].
Here: a multi-output GP on min-max normalised objectives, float64 throughout, and
qLogExpectedHypervolumeImprovement (Daulton et al., 2020; Ament et al., 2023) over a candidate pool, with
pending trials as ``X_pending``. Reference point: ``1 + reference_margin`` (1.1) in every normalised
objective, i.e. the worst observed value plus 10% of the observed range, so the extremes of the front still
count.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from botorch.acquisition.multi_objective import qLogExpectedHypervolumeImprovement
from botorch.sampling import SobolQMCNormalSampler
from botorch.utils.multi_objective.box_decompositions import FastNondominatedPartitioning

from baselines.searchers.bayesian import DTYPE, BayesianSearcher, as_pending, evaluate_acquisition, fit_gp


class EHVISearcher(BayesianSearcher):
    """qLogEHVI on normalised objectives; see :class:`BayesianSearcher` for the shared options.

    :param reference_margin: Reference point = 1 + margin in each normalised (minimised) objective.
    """

    def __init__(self, config_space: dict[str, Any], *args, reference_margin: float = 0.1, **kwargs):
        super().__init__(config_space, *args, **kwargs)
        if reference_margin <= 0:
            raise ValueError(f"reference_margin must be positive, got {reference_margin}")
        self.reference_margin = reference_margin

    def _acquisition(
        self, train_F: np.ndarray, train_Y: np.ndarray, pool_F: np.ndarray, pending_F: np.ndarray, seed: int
    ) -> np.ndarray:
        # BoTorch maximises: negate the normalised objectives and the reference point.
        model = fit_gp(train_F, -train_Y, seed, self.gp_fit_maxiter)
        ref = torch.full((train_Y.shape[1],), -(1.0 + self.reference_margin), dtype=DTYPE)
        partitioning = FastNondominatedPartitioning(ref_point=ref, Y=-torch.as_tensor(train_Y, dtype=DTYPE))
        acqf = qLogExpectedHypervolumeImprovement(
            model=model,
            ref_point=ref.tolist(),
            partitioning=partitioning,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]), seed=seed),
            X_pending=as_pending(pending_F),
        )
        return evaluate_acquisition(acqf, pool_F)
