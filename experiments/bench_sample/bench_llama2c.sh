#!/usr/bin/env bash
# bench_llama2c.sh: decoding speed of llama2.c's single-stream run.c next to `rlhf bench sample`
# (batched sampling through our KV cache) on the same random-weight model of the reference config
# (dim 288, hidden 768, 6 layers, 6 heads, 6 kv heads, vocab 32000, seq 256, untied head).
#
# Usage:
#   LLAMA2C_DIR=/path/to/llama2.c [RLHF_BIN=build/rlhf] [THREADS=2] [STEPS=256] [K=32] [REPEATS=3] \
#       experiments/bench_sample/bench_llama2c.sh
# LLAMA2C_DIR is a checkout of https://github.com/karpathy/llama2.c, which this project does not
# ship (get one with: git clone https://github.com/karpathy/llama2.c /tmp/llama2.c). Exit status:
# 0 done, 2 missing input (llama2.c checkout, our program, the tokenizer), 1 a step failed.
#
# What runs:
#   1. gcc -Ofast -fopenmp -march=native run.c -lm   (llama2.c's `make runomp` flags)
#   2. $RLHF_BIN model init ... --out $MODEL         (llama2.c v0 checkpoint, random weights)
#   3. OMP_NUM_THREADS=$THREADS run $MODEL -z llama2_tokenizer.bin -n $STEPS, twice:
#        greedy (-t 0): the forward pass speed;
#        llama2.c's default sampling (-t 1 -p 0.9 -s 42): on random weights the distribution is
#        nearly uniform, so top-p sorts almost all 32000 entries every step and this is much slower.
#      run.c reports "achieved tok/s" over positions 1..STEPS-1 (the first is not timed); each
#      mode runs REPEATS times and the median is reported.
#   4. $RLHF_BIN bench sample --model $MODEL --k $K --steps $STEPS --threads $THREADS
#      (K sequences decoded together; its tokens/s are summed over the K streams).
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=${RLHF_SHARED:-$repo/../shared}
RLHF_BIN=${RLHF_BIN:-$repo/build/rlhf}
THREADS=${THREADS:-2}
STEPS=${STEPS:-256}
K=${K:-32}
REPEATS=${REPEATS:-3}
MODEL=${MODEL:-/tmp/ref288.bin}
TOKENIZER=${TOKENIZER:-$shared/models/llama2_tokenizer.bin}

if [ -z "${LLAMA2C_DIR:-}" ] || [ ! -f "${LLAMA2C_DIR}/run.c" ]; then
    cat >&2 <<EOF
bench_llama2c.sh: set LLAMA2C_DIR to a checkout of karpathy/llama2.c (it must contain run.c).
  git clone https://github.com/karpathy/llama2.c /tmp/llama2.c
  LLAMA2C_DIR=/tmp/llama2.c $0
EOF
    exit 2
fi
if [ ! -x "$RLHF_BIN" ]; then
    echo "bench_llama2c.sh: $RLHF_BIN not found; build it (cmake -S . -B build && cmake --build build)" \
         "or set RLHF_BIN" >&2
    exit 2
fi
if [ ! -f "$TOKENIZER" ]; then
    echo "bench_llama2c.sh: tokenizer $TOKENIZER not found (set RLHF_SHARED or TOKENIZER)" >&2
    exit 2
fi

work=$(mktemp -d /tmp/bench_llama2c.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cpus; threads $THREADS"
echo "== llama2.c: $LLAMA2C_DIR ($(git -C "$LLAMA2C_DIR" rev-parse --short HEAD 2>/dev/null || echo 'commit unknown'))"
gcc -Ofast -fopenmp -march=native -o "$work/run" "$LLAMA2C_DIR/run.c" -lm || {
    echo "bench_llama2c.sh: building run.c failed" >&2; exit 1; }

echo "== model: $MODEL"
"$RLHF_BIN" model init --dim 288 --hidden 768 --layers 6 --heads 6 --kv-heads 6 --vocab 32000 \
    --seq 256 --out "$MODEL" || { echo "bench_llama2c.sh: rlhf model init failed" >&2; exit 1; }

# run_c LABEL ARGS...: runs run.c REPEATS times (each run's figure on stderr) and prints the
# median of the achieved tok/s (run-to-run spread on a small shared machine is large).
run_c() {
    local label=$1; shift
    local vals=() line i
    for ((i = 0; i < REPEATS; i++)); do
        line=$(OMP_NUM_THREADS=$THREADS "$work/run" "$MODEL" -z "$TOKENIZER" -n "$STEPS" "$@" \
               2>&1 >/dev/null | grep 'achieved tok/s') || {
            echo "bench_llama2c.sh: run.c ($label) failed" >&2; return 1; }
        vals+=("${line##* }")
        echo "  run.c $label, run $((i + 1)): ${line##* } tok/s" >&2
    done
    local med
    med=$(printf '%s\n' "${vals[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf 'llama2.c run.c, %s, 1 stream, %s threads: %.1f tok/s (median of %d)\n' \
        "$label" "$THREADS" "$med" "$REPEATS"
}

echo "== llama2.c run.c, $STEPS steps"
r1=$(run_c "greedy (-t 0)" -t 0) || exit 1
r2=$(run_c "default sampling (-t 1 -p 0.9)" -t 1 -p 0.9 -s 42) || exit 1
echo "$r1"
echo "$r2"

echo "== rlhf bench sample, K=$K"
out=$("$RLHF_BIN" bench sample --model "$MODEL" --k "$K" --steps "$STEPS" --threads "$THREADS" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "bench_llama2c.sh: rlhf bench sample failed (exit $rc)" >&2; exit 1; }

echo "== summary ($STEPS steps, $THREADS threads)"
echo "$r1"
echo "$r2"
echo "$out" | grep -E "^(sample|baseline) k=[0-9]+:|^speed-up" | sed 's/^/rlhf bench sample: /'
