#!/usr/bin/env bash
# The analytics GPU offload measured on this machine's GPU: CPU vs GPU by input size, transfer
# included (loadtest gpu). Run where a GPU and its Vulkan driver are installed; pass
# --allow-software to measure Mesa's lavapipe instead. Figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p loadtest
./target/release/loadtest gpu "$@"
