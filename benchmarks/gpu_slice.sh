#!/usr/bin/env bash
# The paper's budgets on one GPU in minutes: MiniLM (and the 12-layer e5-small-l12 when installed) on RTE, MRPC,
# STS-B and SST-2; weight-sharing NAS, retraining-free pruning, standard NAS where it fits, and the speed of
# sliced vs extracted sub-networks in fp32 and bf16. See benchmarks/grids/paper_slice.py and the README's
# "Scale-out on a GPU".
#
#   benchmarks/gpu_slice.sh [OUTPUT_DIR] [options of python -m benchmarks.grids.paper_slice]
#   benchmarks/gpu_slice.sh runs/slice-dry --dry-run      # the same steps on the CPU, tiny budgets, minutes
#
# OUTPUT_DIR defaults to runs/gpu-slice; the GLUE copy to $GLUE_DIR, else ../shared/data/glue beside the checkout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-runs/gpu-slice}"
[[ $# -gt 0 ]] && shift
data="${GLUE_DIR:-$root/../shared/data/glue}"
data_args=()
[[ -d "$data" ]] && data_args=(--data-dir "$data")
cd "$root"
exec "${PYTHON:-python3}" -m benchmarks.grids.paper_slice --output-dir "$out" "${data_args[@]}" "$@"
