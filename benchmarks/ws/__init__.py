"""Weight-sharing search: sub-networks of a trained super-network scored without training."""
