"""Standard NAS: every sampled sub-network fine-tuned on its own, one trial each (Syne Tune or Ray Tune)."""
