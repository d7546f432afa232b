#!/usr/bin/env bash
# Builds the rlhf program and runs the current demo: text generation from a tiny pretrained
# Llama-2 checkpoint in ../shared/models (greedy, then sampled).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target rlhf
shared=${RLHF_SHARED:-../shared}
model=$shared/models/aidreams260K.bin
tok=$shared/models/aidreams260K_tok512.bin
for f in "$model" "$tok"; do
  [ -f "$f" ] || { echo "demo: $f not found (set RLHF_SHARED to the shared/ folder)" >&2; exit 1; }
done
echo "== greedy (temperature 0):"
./build/rlhf generate --model "$model" --tokenizer "$tok" --temperature 0 --steps 128
echo
echo "== sampled (temperature 0.8, top-p 0.9, seed 7):"
./build/rlhf generate --model "$model" --tokenizer "$tok" --temperature 0.8 --top-p 0.9 --seed 7 --steps 128
