"""Speed and latency measurements: inference speed of sub-networks, model latency, backend timing."""
