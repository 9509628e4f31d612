"""Structural pruning baselines run on a fine-tuned model: context, candidates of each method, results rows."""
