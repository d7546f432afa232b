#!/usr/bin/env bash
# cuda_check/run.sh: every GPU check of the CUDA backend (issue 9) in one command, for the first
# session that has a GPU. Prints one results table at the end. NOT YET RUN (written on a machine
# without a GPU; see experiments/README.md).
#
#   bash experiments/cuda_check/run.sh [BUILD_DIR]        (from the repository root)
#
# BUILD_DIR (default build) holds a Release build made with the CUDA backend for sm_90
# (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90), built where the
# toolchain is and carried to the GPU machine, or built there. The test binaries are run
# directly (not through ctest, whose files hold the build machine's absolute paths).
# RLHF_SHARED (default ../shared, then .gpu/shared) must hold models/stories260K.bin for the
# greedy-generation check (copy it into a carried folder when ../shared does not travel).
# Steps, each logged to $OUT_DIR (default cuda_check_out/):
#   1. tests: test_cuda_ops (CPU vs CUDA, every op, model, sampler, greedy ids), test_ops and
#      test_sample on cuda:0/fp32
#   2. bench train, 124M Llama (dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000,
#      seq 1024), batch 8, bf16 then tf32: tokens/s, MFU vs 989 TFLOP/s and vs measured GEMM
#   3. bench sample, same 124M config, 256 sequences x 256 tokens (prompt 16), bf16
#   4. experiments/cuda_check/bench_hf_generate.py on the same config and batch (transformers, bf16)
#   5. bench sample, Llama-2-7B shape (dim 4096, 32 layers, 32 heads, hidden 11008, vocab 32000,
#      seq 512), 16 sequences x 128 tokens, bf16 (random weights; fp32 storage: 27 GB + cache)
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
OUT_DIR=${OUT_DIR:-${OUT:-$SRC/cuda_check_out}}  # $OUT: the device run's folder that comes back
mkdir -p "$OUT_DIR"
if [ -z "${RLHF_SHARED:-}" ]; then
    if [ -f "$SRC/../shared/models/stories260K.bin" ]; then RLHF_SHARED=$SRC/../shared
    else RLHF_SHARED=$SRC/.gpu/shared; fi
fi
export RLHF_SHARED RLHF_SRC=$SRC
BIN=$BUILD/rlhf
rows=()
row() { rows+=("$(printf '%-58s %s' "$1" "$2")"); }

echo "== device"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } | tee "$OUT_DIR/gpu.txt"
missing=$(ldd "$BIN" "$(dirname "$BIN")/librlhf_cuda.so" 2>/dev/null | grep "not found")
if [ -n "$missing" ]; then
    echo "shared libraries missing on this machine (carry them or build here):"
    echo "$missing"
fi

echo "== 1. tests"
run_test() { # name, env assignment or "", binary
    local name=$1 envset=$2 bin=$3
    local t0=$(date +%s)
    env $envset "$BUILD/$bin" >"$OUT_DIR/$name.log" 2>&1
    local rc=$? t=$(( $(date +%s) - t0 ))
    tail -3 "$OUT_DIR/$name.log"
    case $rc in
        0) row "test $name" "PASS (${t}s)" ;;
        77) row "test $name" "SKIPPED: $(grep -m1 SKIP "$OUT_DIR/$name.log")" ;;
        *) row "test $name" "FAIL rc=$rc (see $OUT_DIR/$name.log)"; grep -m5 FAIL "$OUT_DIR/$name.log" ;;
    esac
}
run_test test_cuda_ops "" test_cuda_ops
run_test test_backend_host "" test_backend_host
run_test test_ops_cuda "RLHF_TEST_BACKEND=cuda:0/fp32" test_ops
run_test test_sample_cuda "RLHF_TEST_BACKEND=cuda:0/fp32" test_sample
g=$(grep -m1 "greedy generation" "$OUT_DIR/test_cuda_ops.log")
[ -n "$g" ] && row "greedy ids stories260K (fp32)" "${g#*: }"

M124="--dim 768 --layers 12 --heads 12 --kv-heads 12 --hidden 2048 --vocab 32000 --seq 1024"
M7B="--dim 4096 --layers 32 --heads 32 --kv-heads 32 --hidden 11008 --vocab 32000 --seq 512"

echo "== 2. bench train 124M"
for prec in bf16 tf32; do
    # shellcheck disable=SC2086
    "$BIN" bench train $M124 --batch 8 --steps 10 --warmup 2 --device cuda --precision $prec \
        >"$OUT_DIR/train_124M_$prec.log" 2>&1
    rc=$?
    grep -E "^train:|^gpu:|MFU|GEMM" "$OUT_DIR/train_124M_$prec.log"
    if [ $rc -ne 0 ]; then row "train 124M $prec" "FAIL rc=$rc: $(tail -1 "$OUT_DIR/train_124M_$prec.log")"; continue; fi
    row "train 124M $prec tokens/s" "$(sed -n 's/^train: .* ms median, \([0-9]*\) tokens\/s.*/\1/p' "$OUT_DIR/train_124M_$prec.log")"
    row "train 124M $prec MFU (989 TFLOP/s peak)" "$(sed -n 's/^MFU vs datasheet[^:]*: \([0-9.]*%\).*/\1/p' "$OUT_DIR/train_124M_$prec.log")"
    row "train 124M $prec MFU (measured bf16 GEMM)" "$(sed -n 's/.*MFU vs measured: \([0-9.]*%\).*/\1/p' "$OUT_DIR/train_124M_$prec.log")"
    row "cuBLAS bf16 GEMM 8192^3" "$(sed -n 's/^cuBLAS bf16 GEMM [^:]*: \([0-9.]* TFLOP\/s\).*/\1/p' "$OUT_DIR/train_124M_$prec.log")"
done

echo "== 3. bench sample 124M, 256 sequences"
# shellcheck disable=SC2086
"$BIN" bench sample $M124 --k 256 --steps 256 --prompt-len 16 --device cuda --precision bf16 \
    >"$OUT_DIR/sample_124M.log" 2>&1
rc=$?
grep -E "^sample|^gpu:|MFU" "$OUT_DIR/sample_124M.log"
ours=$(sed -n 's/^sample k=[0-9]*: .* s: \([0-9.]*\) tok\/s.*/\1/p' "$OUT_DIR/sample_124M.log")
if [ $rc -eq 0 ]; then row "sample 124M k=256 (rlhf, bf16) tok/s" "$ours"; else row "sample 124M k=256" "FAIL rc=$rc: $(tail -1 "$OUT_DIR/sample_124M.log")"; fi

echo "== 4. transformers generate, same config and batch"
"${PYTHON:-python3}" "$SRC/experiments/cuda_check/bench_hf_generate.py" --dim 768 --layers 12 --heads 12 --hidden 2048 \
    --vocab 32000 --seq 1024 --k 256 --steps 256 --prompt-len 16 >"$OUT_DIR/hf_generate.log" 2>&1
rc=$?
cat "$OUT_DIR/hf_generate.log" | tail -3
hf=$(sed -n 's/^hf_generate: .* s: \([0-9.]*\) tok\/s.*/\1/p' "$OUT_DIR/hf_generate.log")
if [ -n "$hf" ]; then
    row "sample 124M k=256 (HF generate, bf16) tok/s" "$hf"
    [ -n "$ours" ] && row "speed-up rlhf / HF generate (goal >= 5x)" "$(awk -v a="$ours" -v b="$hf" 'BEGIN{printf "%.2fx", a/b}')"
else
    row "HF generate" "did not run (rc=$rc): $(tail -1 "$OUT_DIR/hf_generate.log")"
fi

echo "== 5. bench sample 7B shape"
# shellcheck disable=SC2086
"$BIN" bench sample $M7B --k 16 --steps 128 --prompt-len 16 --device cuda --precision bf16 \
    >"$OUT_DIR/sample_7B.log" 2>&1
rc=$?
grep -E "^sample|^gpu:|MFU|parameters" "$OUT_DIR/sample_7B.log"
if [ $rc -eq 0 ]; then
    row "sample 7B-shaped k=16 (bf16) tok/s" "$(sed -n 's/^sample k=[0-9]*: .* s: \([0-9.]*\) tok\/s.*/\1/p' "$OUT_DIR/sample_7B.log")"
else
    row "sample 7B-shaped k=16" "FAIL rc=$rc: $(tail -1 "$OUT_DIR/sample_7B.log")"
fi

echo
echo "== results ($(head -1 "$OUT_DIR/gpu.txt"))"
for r in "${rows[@]}"; do echo "$r"; done | tee "$OUT_DIR/results.txt"
