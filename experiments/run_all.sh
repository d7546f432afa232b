#!/usr/bin/env bash
# run_all.sh: reruns the experiments of experiments/*/ with the commands their READMEs give.
#
#   experiments/run_all.sh [--list] [--only NAME]... [WORKDIR]
# Run from anywhere (it changes to the repository root). WORKDIR (default /tmp/rlhf_experiments)
# gets one folder per experiment and its log, NAME.log. Environment: RLHF_BIN (default
# build/rlhf), RLHF_SHARED (default ../shared), THREADS; bench_sample needs LLAMA2C_DIR (a
# llama2.c checkout) and gatt_recall needs GATT_POLICY, GATT_TOKENIZER, GATT_DIALOGUES (see
# gatt_recall/README.md for how they were made); without them those two are skipped.
# This is not a test: the whole list takes hours on 2 cores. Compare the outputs with the
# folders' READMEs by hand. Exit status: the number of experiments that failed (0: all ran).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export RLHF_BIN=${RLHF_BIN:-build/rlhf}
export RLHF_SHARED=${RLHF_SHARED:-../shared}
PY=/usr/bin/python3

# name | what (one line)
EXPERIMENTS="model_reference|PyTorch reference: rewrite tests/fixtures/tiny_ref.bin, replay llama2.c greedy outputs
hf_reference|Hugging Face checkpoints: transformers-style forward vs the fixture (--check), transformers if present
spm_fixture|SentencePiece fixture regenerated into WORKDIR and compared with tests/fixtures
bench_train|training throughput: PyTorch step vs rlhf bench train (2 threads)
bench_sample|sampling: llama2.c run.c vs rlhf bench sample (needs LLAMA2C_DIR)
tokenizer_pretrain|rlhf pretrain tiny preset (512 vocab), rlhf tokenizer train 4096 + pretrain
rm_hh|helpfulness and safety reward models on HH-RLHF
rs_synthetic|one rejection-sampling round on the known-reward task (K=8)
ppo_synthetic|PPO on the known-reward task, beta 0.01 0.1 1.0
gatt_recall|Ghost Attention recall by turn (needs GATT_POLICY GATT_TOKENIZER GATT_DIALOGUES)"

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

ONLY=()
W=/tmp/rlhf_experiments
while [ $# -gt 0 ]; do
    case $1 in
    --list)
        echo "$EXPERIMENTS" | while IFS='|' read -r n d; do printf '%-20s %s\n' "$n" "$d"; done
        exit 0 ;;
    --only)
        [ $# -ge 2 ] || { echo "run_all.sh: --only needs a NAME" >&2; exit 2; }
        echo "$EXPERIMENTS" | cut -d'|' -f1 | grep -qx -- "$2" ||
            { echo "run_all.sh: no experiment '$2' (see --list)" >&2; exit 2; }
        ONLY+=("$2")
        shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "run_all.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) W=$1; shift ;;
    esac
done
mkdir -p "$W"

# One experiment: the commands of its README. Returns 77 when it cannot run here.
run_one() {
    local name=$1 out=$W/$1
    mkdir -p "$out"
    case $name in
    model_reference)
        $PY experiments/model_reference/torch_reference.py --check-greedy ;;
    hf_reference)
        $PY experiments/hf_reference/hf_llama_reference.py --check || return 1
        $PY experiments/hf_reference/check_transformers.py
        local rc=$?
        [ $rc = 2 ] && echo "check_transformers.py: transformers is not installed (not run)"
        [ $rc = 0 ] || [ $rc = 2 ] ;;
    spm_fixture)
        $PY experiments/spm_fixture/make_spm_fixture.py --out "$out/spm_llama2_cases.txt" &&
            cmp "$out/spm_llama2_cases.txt" tests/fixtures/spm_llama2_cases.txt &&
            echo "spm_llama2_cases.txt: identical to the committed fixture" ;;
    bench_train)
        $PY experiments/bench_train/bench_torch_train.py --threads 2 --warmup 2 --steps 5 &&
            "$RLHF_BIN" bench train --threads 2 ;;
    bench_sample)
        if [ -z "${LLAMA2C_DIR:-}" ]; then
            echo "bench_sample: set LLAMA2C_DIR to a llama2.c checkout"
            return 77
        fi
        experiments/bench_sample/bench_llama2c.sh ;;
    tokenizer_pretrain)
        experiments/tokenizer_pretrain/run.sh "$out" ;;
    rm_hh)
        experiments/rm_hh/rm_hh.sh "$out" ;;
    rs_synthetic)
        experiments/rs_synthetic/rs_synthetic.sh "$out" ;;
    ppo_synthetic)
        BETAS="0.01 0.1 1.0" experiments/ppo_synthetic/ppo_synthetic.sh "$out" ;;
    gatt_recall)
        if [ -z "${GATT_POLICY:-}" ] || [ -z "${GATT_TOKENIZER:-}" ] || [ -z "${GATT_DIALOGUES:-}" ]; then
            echo "gatt_recall: set GATT_POLICY, GATT_TOKENIZER and GATT_DIALOGUES (gatt_recall/README.md)"
            return 77
        fi
        N=${N:-200} K=${K:-4} experiments/gatt_recall/gatt_recall.sh "$GATT_POLICY" "$GATT_TOKENIZER" \
            "$GATT_DIALOGUES" "$out" ;;
    esac
}

failed=0
summary=""
while IFS='|' read -r name what; do
    if [ ${#ONLY[@]} -gt 0 ]; then
        printf '%s\n' "${ONLY[@]}" | grep -qx -- "$name" || continue
    fi
    echo "== $name: $what (log: $W/$name.log)"
    t0=$(date +%s)
    run_one "$name" >"$W/$name.log" 2>&1
    rc=$?
    t=$(($(date +%s) - t0))
    case $rc in
    0) st="ok" ;;
    77) st="skipped: $(tail -1 "$W/$name.log")" ;;
    *) st="FAILED (exit $rc): $(tail -1 "$W/$name.log")"; failed=$((failed + 1)) ;;
    esac
    echo "   $st (${t} s)"
    summary+="$(printf '%-20s %s' "$name" "$st")"$'\n'
done <<<"$EXPERIMENTS"
echo
printf '%s' "$summary"
exit $failed
