"""Studies that chain the commands to answer one question each; their tidy outputs go to benchmarks/results/."""
