#!/usr/bin/env bash
# cli_emu.sh: the program's --device cuda paths on the CUDA emulator (tests/cuemu; no GPU needed).
#
#   cli-emu-01  greedy aidreams260K ids with --device cuda:0/fp32 equal the CPU's and llama2.c's
#   cli-emu-02  bench train on cuda (fp32): the same loss per step as on the CPU (1e-4 relative),
#               the GPU lines (device, MFU against the datasheet and a measured bf16 GEMM)
#   cli-emu-03  bench train and bench sample in bf16 run and print their figures
#   cli-emu-04  errors: a device that does not exist, a bad RLHF_CUDA_ATTN, --precision on the CPU
#
# Environment: RLHF_CUDA_LIB (the emulated module, set by ctest), RLHF_BIN, RLHF_SHARED, RLHF_SRC.
# Exit status: 0 all passed, 1 a check failed, 77 without the module or the shared models.
set -u

. "$(dirname "$0")/lib.sh"
[ -n "${RLHF_CUDA_LIB:-}" ] && [ -f "$RLHF_CUDA_LIB" ] || skip "RLHF_CUDA_LIB names no emulated module"
export RLHF_CUDA_LIB
AID=$SHARED/models/aidreams260K.bin
AIDTOK=$SHARED/models/aidreams260K_tok512.bin
need_files "$AID" "$AIDTOK"
TINY="--dim 48 --layers 2 --heads 4 --kv-heads 2 --hidden 128 --vocab 256 --seq 32"

echo "# cli-emu-01: greedy ids on the emulated GPU"
"$BIN" generate --model "$AID" --tokenizer "$AIDTOK" --temperature 0 --steps 100 --ids \
    >"$TMP/cpu" 2>"$TMP/err"
check cli-emu-01 "greedy on the CPU" $?
"$BIN" generate --model "$AID" --tokenizer "$AIDTOK" --temperature 0 --steps 100 --ids \
    --device cuda:0/fp32 >"$TMP/gpu" 2>"$TMP/err"
check cli-emu-01 "greedy on cuda:0/fp32 ($(head -c 200 "$TMP/err"))" $?
cmp -s "$TMP/cpu" "$TMP/gpu"
check cli-emu-01 "the same $(wc -w <"$TMP/cpu") ids" $?
fx=$SRC/tests/fixtures/greedy_aidreams260K.txt
if [ -f "$fx" ]; then
    want=$(grep -v '^#' "$fx" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//' | cut -d' ' -f1-10)
    [ "$(cut -d' ' -f1-10 "$TMP/gpu")" = "$want" ]
    check cli-emu-01 "first ten ids equal llama2.c's" $?
fi

echo "# cli-emu-02: a training step on the emulated GPU matches the CPU"
# shellcheck disable=SC2086
"$BIN" bench train $TINY --batch 2 --steps 3 --warmup 1 --no-sgemm >"$TMP/tcpu" 2>&1
check cli-emu-02 "bench train on the CPU" $?
# shellcheck disable=SC2086
"$BIN" bench train $TINY --batch 2 --steps 3 --warmup 1 --device cuda --precision fp32 \
    --gemm-n 64 >"$TMP/tgpu" 2>&1
check cli-emu-02 "bench train on cuda fp32 ($(tail -1 "$TMP/tgpu"))" $?
losses() { sed -n 's/^step .* loss \([0-9.]*\) .*/\1/p' "$1"; }
n=$(losses "$TMP/tcpu" | wc -l)
[ "$n" -eq 4 ] && paste <(losses "$TMP/tcpu") <(losses "$TMP/tgpu") |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4 * $1) bad = 1 } END { exit bad }'
check cli-emu-02 "4 losses equal within 1e-4 relative: $(losses "$TMP/tcpu" | tr '\n' ' ')/ $(losses "$TMP/tgpu" | tr '\n' ' ')" $?
grep -q '^gpu: cuemu' "$TMP/tgpu" && grep -q 'MFU vs datasheet' "$TMP/tgpu" &&
    grep -q 'MFU vs measured' "$TMP/tgpu"
check cli-emu-02 "device and MFU lines printed" $?

echo "# cli-emu-03: bf16 training and batched sampling"
# shellcheck disable=SC2086
"$BIN" bench train $TINY --batch 2 --steps 2 --warmup 1 --device cuda --gemm-n 64 >"$TMP/tbf" 2>&1 &&
    grep -q 'device cuda:0/bf16' "$TMP/tbf" && grep -q '^train: .* tokens/s' "$TMP/tbf"
check cli-emu-03 "bench train, default precision bf16 ($(tail -1 "$TMP/tbf"))" $?
# shellcheck disable=SC2086
"$BIN" bench sample $TINY --k 4 --steps 12 --prompt-len 3 --device cuda >"$TMP/sbf" 2>&1 &&
    grep -q '^sample k=4: 48 tokens in .* tok/s' "$TMP/sbf"
check cli-emu-03 "bench sample k=4 ($(grep -m1 '^sample' "$TMP/sbf"))" $?

echo "# cli-emu-04: errors"
"$BIN" generate --model "$AID" --tokenizer "$AIDTOK" --steps 5 --device cuda:1 >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] && grep -q 'only 1 CUDA device' "$TMP/err"
check cli-emu-04 "cuda:1 on a one-device machine: exit 1, says so (rc $rc: $(head -c 160 "$TMP/err"))" $?
RLHF_CUDA_ATTN=flash "$BIN" generate --model "$AID" --tokenizer "$AIDTOK" --steps 5 --device cuda \
    >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && grep -q 'RLHF_CUDA_ATTN' "$TMP/err"
check cli-emu-04 "RLHF_CUDA_ATTN=flash is an error naming it (rc $rc)" $?
"$BIN" generate --model "$AID" --tokenizer "$AIDTOK" --steps 5 --precision bf16 >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] && grep -q 'needs --device cuda' "$TMP/err"
check cli-emu-04 "--precision without --device cuda is an error (rc $rc)" $?

finish
