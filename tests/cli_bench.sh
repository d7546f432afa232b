#!/usr/bin/env bash
# cli_bench.sh: smoke test of `rlhf bench train` and `rlhf bench sample` on a tiny config: they run,
# exit 0 and print their figures. No timing is asserted (benchmarks only print figures).
#
#   cli-bench-01  bench train: per-step lines, tokens/s, model GFLOP/s, sgemm rates and ratio
#   cli-bench-02  bench sample (random model, --baseline): tok/s and ms per decode step
#   cli-bench-03  bench sample --model on a checkpoint written by `model init`; model info on it
#
# Environment: RLHF_BIN (the program), RLHF_SRC (the checkout). Exit 0 passed, 1 failed.
set -u

. "$(dirname "$0")/lib.sh"
TINY="--dim 32 --hidden 64 --layers 2 --heads 4 --kv-heads 2 --vocab 64 --seq 32"
# expect FILE PATTERN WHAT
expect() {
    if grep -q -- "$2" "$1"; then ok "$3"; else fail "$3: no '$2' in the output"; fi
}

echo "# cli-bench-01: bench train"
# shellcheck disable=SC2086
"$BIN" bench train $TINY --batch 2 --steps 3 --warmup 1 --threads 2 >"$TMP/out" 2>"$TMP/err"
rc=$?
sed 's/^/    /' "$TMP/out"
if [ $rc -eq 0 ]; then ok "bench train exits 0"; else fail "bench train -> $rc: $(head -3 "$TMP/err")"; fi
expect "$TMP/out" "tokens/s" "bench train prints tokens/s"
expect "$TMP/out" "model GFLOP/s" "bench train prints model GFLOP/s"
expect "$TMP/out" "FLOPs/step = 6\*P_matmul\*B\*T + 6\*L\*B\*T^2\*C" "bench train prints the FLOP formula"
expect "$TMP/out" "sgemm (OpenBLAS" "bench train prints the sgemm rate"
expect "$TMP/out" "ratio model GFLOP/s / sgemm GFLOP/s" "bench train prints the ratio"
n=$(grep -c "^step .* loss [0-9]" "$TMP/out")
if [ "$n" -eq 4 ]; then ok "bench train prints 4 step lines (1 warmup + 3)"; else fail "bench train printed $n step lines, want 4"; fi
if grep "^step" "$TMP/out" | grep -qi "nan\|inf"; then fail "bench train: a loss is not finite"; else ok "bench train losses are finite"; fi

echo "# cli-bench-02: bench sample"
# shellcheck disable=SC2086
"$BIN" bench sample $TINY --k 4 --steps 16 --baseline --threads 2 >"$TMP/out" 2>"$TMP/err"
rc=$?
sed 's/^/    /' "$TMP/out"
if [ $rc -eq 0 ]; then ok "bench sample exits 0"; else fail "bench sample -> $rc: $(head -3 "$TMP/err")"; fi
expect "$TMP/out" "^sample k=4: 64 tokens" "bench sample generates 4 x 16 tokens"
expect "$TMP/out" "tok/s" "bench sample prints tok/s"
expect "$TMP/out" "ms per decode step" "bench sample prints ms per decode step"
expect "$TMP/out" "^baseline k=1: 16 tokens" "bench sample --baseline runs k=1"

echo "# cli-bench-03: bench sample on a checkpoint"
# shellcheck disable=SC2086
if "$BIN" model init $TINY --tied --format v1 --out "$TMP/m.bin" >"$TMP/out" 2>"$TMP/err"; then
    ok "model init --format v1"
    "$BIN" model info "$TMP/m.bin" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    sed 's/^/    /' "$TMP/out"
    if [ $rc -eq 0 ]; then ok "model info exits 0"; else fail "model info -> $rc: $(head -3 "$TMP/err")"; fi
    expect "$TMP/out" "v1" "model info names the v1 format"
    expect "$TMP/out" "(tied)" "model info says the head is tied"
    expect "$TMP/out" "model.layers.\*.self_attn.q_proj.weight *(2, 32, 32) *2048" "model info lists wq"
    # P = V*C + L*(C + C*C + 2*(NKV*HS)*C + C*C + C + 3*FF*C) + C = 2048 + 2*(32+1024+2*512+1024+32+3*2048) + 32
    expect "$TMP/out" "parameters: 20640 " "model info counts 20640 parameters"
    "$BIN" bench sample --model "$TMP/m.bin" --k 2 --steps 8 --temperature 0 -q >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 0 ]; then ok "bench sample --model exits 0"; else fail "bench sample --model -> $rc: $(head -3 "$TMP/err")"; fi
    expect "$TMP/out" "^sample k=2: 16 tokens" "bench sample --model generates 2 x 8 tokens"
else
    fail "model init -> $?: $(head -3 "$TMP/err")"
fi

finish
