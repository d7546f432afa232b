#!/usr/bin/env bash
# cuda_check/run.sh: every GPU check of the CUDA backend (issue 9) in one command, for a session
# that has a GPU. Prints one results table at the end (also $OUT_DIR/results.txt).
#
#   bash experiments/cuda_check/run.sh [--rehearse] [--steps LIST] [BUILD_DIR]   (from the repo root)
#
# BUILD_DIR (default build) holds a Release build with the CUDA backend for sm_90: on the GPU
# machine, the one experiments/cuda_check/pack.sh packs (with its libraries in BUILD/../lib and
# stories260K.bin in BUILD/../shared; see there), or any build made there. The test binaries are
# run directly (not through ctest, whose files hold the build machine's absolute paths).
# RLHF_SHARED (default ../shared, then BUILD/../shared, then .gpu/shared) must hold
# models/stories260K.bin for the greedy-generation check.
# --steps LIST: a comma-separated subset of tests,train,train1b,sample,hf,sample7b (default all),
# so that the work fits in the device's 10-minute calls.
# --rehearse: on a machine WITHOUT a GPU, the same script on the emulated backend
# (BUILD/librlhf_cuda_emu.so, tests/cuemu) with tiny shapes: proves the script, the program's
# --device cuda paths and the parsing of every figure; the figures themselves mean nothing.
# Steps, each logged to $OUT_DIR (default cuda_check_out/):
#   tests     test_cuda_ops (CPU vs CUDA, every op, model, sampler, greedy ids) with the default
#             (GEMM) attention and with RLHF_CUDA_ATTN=fused; test_backend_host; test_ops and
#             test_sample on cuda:0/fp32
#   train     bench train, 124M Llama (dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000,
#             seq 1024), batch 8: bf16 (GEMM attention), bf16 with the fused attention, tf32:
#             tokens/s, MFU vs 989 TFLOP/s and vs a measured bf16 GEMM
#   train1b   bench train, a 1B Llama (dim 2048, 16 layers, 16 heads, hidden 5632), batch 8, bf16
#   sample    bench sample, the 124M config, 256 sequences x 256 tokens (prompt 16), bf16
#   hf        experiments/cuda_check/bench_hf_generate.py on the same config and batch
#             (transformers generate, bf16) and the speed-up
#   sample7b  bench sample, Llama-2-7B shape (dim 4096, 32 layers, 32 heads, hidden 11008,
#             vocab 32000, seq 512), 16 sequences x 128 tokens, bf16 (random weights)
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
REHEARSE=0
STEPS=tests,train,train1b,sample,hf,sample7b
BUILD=$SRC/build
while [ $# -gt 0 ]; do
    case $1 in
        --rehearse) REHEARSE=1 ;;
        --steps) STEPS=$2; shift ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) BUILD=$(cd "$1" && pwd) ;;
    esac
    shift
done
want() { case ",$STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
OUT_DIR=${OUT_DIR:-${OUT:-$SRC/cuda_check_out}}  # $OUT: the device run's folder that comes back
mkdir -p "$OUT_DIR"
if [ -z "${RLHF_SHARED:-}" ]; then
    if [ -f "$SRC/../shared/models/stories260K.bin" ]; then RLHF_SHARED=$SRC/../shared
    elif [ -f "$BUILD/../shared/models/stories260K.bin" ]; then RLHF_SHARED=$(cd "$BUILD/.." && pwd)/shared
    else RLHF_SHARED=$SRC/.gpu/shared; fi
fi
# a build packed by pack.sh brings its libraries in ../lib; CUDA's own come from the toolkit
[ -d "$BUILD/../lib" ] && LD_LIBRARY_PATH=$(cd "$BUILD/../lib" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do
    [ -d "$d" ] && LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d
done
export LD_LIBRARY_PATH
export RLHF_SHARED RLHF_SRC=$SRC
BIN=$BUILD/rlhf
rows=()
row() { rows+=("$(printf '%-58s %s' "$1" "$2")"); }

M124="--dim 768 --layers 12 --heads 12 --kv-heads 12 --hidden 2048 --vocab 32000 --seq 1024"
M1B="--dim 2048 --layers 16 --heads 16 --kv-heads 16 --hidden 5632 --vocab 32000 --seq 1024"
M7B="--dim 4096 --layers 32 --heads 32 --kv-heads 32 --hidden 11008 --vocab 32000 --seq 512"
HF124="--dim 768 --layers 12 --heads 12 --hidden 2048 --vocab 32000 --seq 1024"
TB=8 TSTEPS=10 SK=256 SSTEPS=256 S7K=16 S7STEPS=128 GEMM_N=8192
if [ $REHEARSE = 1 ]; then
    export RLHF_CUDA_LIB=$BUILD/librlhf_cuda_emu.so
    [ -f "$RLHF_CUDA_LIB" ] || { echo "no $RLHF_CUDA_LIB: build with a C++ compiler"; exit 1; }
    M124="--dim 64 --layers 2 --heads 4 --kv-heads 4 --hidden 160 --vocab 300 --seq 64"
    M1B="--dim 96 --layers 2 --heads 4 --kv-heads 2 --hidden 256 --vocab 300 --seq 64"
    M7B="--dim 128 --layers 2 --heads 4 --kv-heads 4 --hidden 344 --vocab 300 --seq 64"
    HF124="--dim 64 --layers 2 --heads 4 --hidden 160 --vocab 300 --seq 64"
    TB=2 TSTEPS=2 SK=8 SSTEPS=16 S7K=4 S7STEPS=8 GEMM_N=128
    echo "== REHEARSAL on the emulated backend ($RLHF_CUDA_LIB): tiny shapes, figures meaningless"
fi

echo "== device"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null ||
  echo "no nvidia-smi"; } | tee "$OUT_DIR/gpu.txt"
missing=$(ldd "$BIN" "$BUILD/librlhf_cuda.so" 2>/dev/null | grep "not found")
if [ -n "$missing" ]; then
    echo "shared libraries missing on this machine (carry them or build here):"
    echo "$missing"
fi

run_test() { # name, env assignments or "", binary
    local name=$1 envset=$2 bin=$3
    local t0 rc t
    t0=$(date +%s)
    # shellcheck disable=SC2086
    env $envset "$BUILD/$bin" >"$OUT_DIR/$name.log" 2>&1
    rc=$?
    t=$(( $(date +%s) - t0 ))
    tail -2 "$OUT_DIR/$name.log"
    case $rc in
        0) row "test $name" "PASS (${t}s)" ;;
        77) row "test $name" "SKIPPED: $(grep -m1 -i skip "$OUT_DIR/$name.log")" ;;
        *) row "test $name" "FAIL rc=$rc (see $OUT_DIR/$name.log)"; grep -m5 FAIL "$OUT_DIR/$name.log" ;;
    esac
}
if want tests; then
    echo "== tests"
    run_test test_cuda_ops "" test_cuda_ops
    run_test test_cuda_ops_fused "RLHF_CUDA_ATTN=fused" test_cuda_ops
    run_test test_backend_host "" test_backend_host
    run_test test_ops_cuda "RLHF_TEST_BACKEND=cuda:0/fp32" test_ops
    if [ $REHEARSE = 0 ]; then # 2.2 million sampled rows: too many to emulate
        run_test test_sample_cuda "RLHF_TEST_BACKEND=cuda:0/fp32" test_sample
    fi
    g=$(grep -m1 "greedy generation" "$OUT_DIR/test_cuda_ops.log")
    [ -n "$g" ] && row "greedy ids stories260K (fp32)" "${g#*: }"
fi

bench_train() { # label, log name, model flags, extra flags...
    local label=$1 log=$2 model=$3 rc
    shift 3
    # shellcheck disable=SC2086
    "$BIN" bench train $model --batch $TB --steps $TSTEPS --warmup 2 --device cuda \
        --gemm-n $GEMM_N "$@" >"$OUT_DIR/$log.log" 2>&1
    rc=$?
    grep -E "^train:|^gpu:|MFU|GEMM|^parameters" "$OUT_DIR/$log.log"
    if [ $rc -ne 0 ]; then row "$label" "FAIL rc=$rc: $(tail -1 "$OUT_DIR/$log.log")"; return; fi
    row "$label tokens/s" "$(sed -n 's/^train: .* ms median, \([0-9]*\) tokens\/s.*/\1/p' "$OUT_DIR/$log.log")"
    row "$label MFU (989 TFLOP/s peak)" "$(sed -n 's/^MFU vs datasheet[^:]*: \([0-9.]*%\).*/\1/p' "$OUT_DIR/$log.log")"
    row "$label MFU (measured bf16 GEMM)" "$(sed -n 's/.*MFU vs measured: \([0-9.]*%\).*/\1/p' "$OUT_DIR/$log.log")"
}
if want train; then
    echo "== bench train 124M"
    bench_train "train 124M bf16" train_124M_bf16 "$M124" --precision bf16
    row "cuBLAS bf16 GEMM ${GEMM_N}^3" "$(sed -n 's/^cuBLAS bf16 GEMM [^:]*: \([0-9.]* TFLOP\/s\).*/\1/p' "$OUT_DIR/train_124M_bf16.log")"
    RLHF_CUDA_ATTN=fused bench_train "train 124M bf16, fused attention" train_124M_bf16_fused "$M124" --precision bf16
    bench_train "train 124M tf32" train_124M_tf32 "$M124" --precision tf32
fi
if want train1b; then
    echo "== bench train 1B"
    bench_train "train 1B bf16" train_1B_bf16 "$M1B" --precision bf16
fi

bench_sample() { # label, log name, model flags, sequences, steps; prints tok/s, "" on failure
    local label=$1 log=$2 model=$3 k=$4 steps=$5 rc tps
    # shellcheck disable=SC2086
    "$BIN" bench sample $model --k $k --steps $steps --prompt-len 16 --device cuda --precision bf16 \
        >"$OUT_DIR/$log.log" 2>&1
    rc=$?
    grep -E "^sample|^gpu:|MFU|^parameters" "$OUT_DIR/$log.log" >&2
    tps=$(sed -n 's/^sample k=[0-9]*: .* s: \([0-9.]*\) tok\/s.*/\1/p' "$OUT_DIR/$log.log")
    if [ $rc -eq 0 ]; then row "$label (bf16) tok/s" "$tps"; echo "$tps"
    else row "$label" "FAIL rc=$rc: $(tail -1 "$OUT_DIR/$log.log")"; fi
}
ours=""
if want sample; then
    echo "== bench sample 124M, $SK sequences"
    bench_sample "sample 124M k=$SK (rlhf)" sample_124M "$M124" $SK $SSTEPS >"$OUT_DIR/.tps"
    ours=$(cat "$OUT_DIR/.tps")
fi

if want hf; then
    echo "== transformers generate, same config and batch"
    # shellcheck disable=SC2086
    "${PYTHON:-python3}" "$SRC/experiments/cuda_check/bench_hf_generate.py" $HF124 \
        --k $SK --steps $SSTEPS --prompt-len 16 >"$OUT_DIR/hf_generate.log" 2>&1
    rc=$?
    tail -3 "$OUT_DIR/hf_generate.log"
    hf=$(sed -n 's/^hf_generate: .* s: \([0-9.]*\) tok\/s.*/\1/p' "$OUT_DIR/hf_generate.log")
    if [ -n "$hf" ]; then
        row "sample 124M k=$SK (HF generate, bf16) tok/s" "$hf"
        [ -n "$ours" ] && row "speed-up rlhf / HF generate (goal >= 5x)" "$(awk -v a="$ours" -v b="$hf" 'BEGIN{printf "%.2fx", a/b}')"
    else
        row "HF generate" "did not run (rc=$rc): $(tail -1 "$OUT_DIR/hf_generate.log")"
    fi
fi

if want sample7b; then
    echo "== bench sample 7B shape"
    bench_sample "sample 7B-shaped k=$S7K" sample_7B "$M7B" $S7K $S7STEPS >/dev/null
fi

echo
[ $REHEARSE = 1 ] && echo "== REHEARSAL (emulated backend, tiny shapes): the figures mean nothing"
echo "== results ($(head -1 "$OUT_DIR/gpu.txt"))"
for r in "${rows[@]}"; do echo "$r"; done | tee "$OUT_DIR/results.txt"
