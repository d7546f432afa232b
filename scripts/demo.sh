#!/usr/bin/env bash
# Builds the rlhf program and runs the demo: the whole Llama 2-Chat recipe (world -> tokenizer ->
# pretrain -> SFT -> reward models -> rejection sampling -> PPO -> Ghost Attention -> gold judges ->
# HTML report) on a synthetic world with gold judges, in one command (`rlhf demo`). Nothing is
# downloaded: the world, the tokenizer and the base model are made on the spot.
#
#   bash scripts/demo.sh [rlhf demo options]     e.g. --quick (about 2 minutes), --out DIR
# Default: about 8 minutes on 2 cores (budget 15), into ./rlhf-demo; run it again to continue after
# Ctrl-C. The report is rlhf-demo/run/report/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target rlhf
./build/rlhf demo "$@"
