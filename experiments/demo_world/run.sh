#!/usr/bin/env bash
# run.sh: the demo world by hand, with the existing commands (issue 10): does a tiny model learn the
# world, do the reward models learn the gold judges' labels, does one rejection-sampling round raise
# gold helpfulness on held-out prompts? Prints the wall time of every step.
#
#   RLHF_BIN=build/rlhf experiments/demo_world/run.sh /tmp/demo_world
#
# Steps (rerunning resumes: finished steps are skipped or resume from the store):
#   world build -> tokenizer train (corpus.txt) -> pretrain -> init + import -> sft (policy 0)
#   -> rm train/eval helpfulness, safety -> sample eval prompts by SFT (round 100) -> world judge
#   -> rs round 1 -> sample eval prompts by round 1's policy (round 101) -> world judge/compare.
# Environment (defaults): RLHF_BIN, THREADS (2), SIZE (full), SEED (1), VOCAB (512),
#   PT_STEPS (400), PT_BATCH (8), DIM (128), LAYERS (4), HEADS (4), SEQ (256), SFT_EPOCHS (3),
#   SFT_LR (1e-3), SFT_SEED (1), RM_EPOCHS (2), RM_LR (1e-3), RM_SEQ (64), K (8), MAXNEW (40), RS_LR (5e-4), RS_EPOCHS (2).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${RLHF_BIN:-$SRC/build/rlhf}
OUT=${1:-/tmp/demo_world}
THREADS=${THREADS:-2}
SIZE=${SIZE:-full}
SEED=${SEED:-1}
VOCAB=${VOCAB:-512}
PT_STEPS=${PT_STEPS:-400}
PT_BATCH=${PT_BATCH:-8}
DIM=${DIM:-128}
LAYERS=${LAYERS:-4}
HEADS=${HEADS:-4}
SEQ=${SEQ:-256}
SFT_EPOCHS=${SFT_EPOCHS:-3}
SFT_LR=${SFT_LR:-1e-3}
SFT_SEED=${SFT_SEED:-1}
RM_EPOCHS=${RM_EPOCHS:-2}
RM_LR=${RM_LR:-1e-3}
RM_SEQ=${RM_SEQ:-64} # a pair renders to < 64 tokens here; the model's 256 would pad 4x
K=${K:-8}
MAXNEW=${MAXNEW:-40}
RS_LR=${RS_LR:-5e-4}
RS_EPOCHS=${RS_EPOCHS:-2}
G=(--threads "$THREADS")
W=$OUT/world
RUN=$OUT/run
TOK=$OUT/tok.model
PT=$OUT/pt
mkdir -p "$OUT"
T0=$(date +%s.%N)
step() { # step NAME: prints the time since the previous step
    local now
    now=$(date +%s.%N)
    printf '[%7.1f s] %s\n' "$(echo "$now - $T0" | bc)" "$1" | tee -a "$OUT/timings.txt"
    T0=$now
}
ckpt() { # newest checkpoint path of a role, absolute
    local p
    p=$(sqlite3 "$RUN/rlhf.db" "SELECT path FROM checkpoints WHERE role = '$1' ORDER BY id DESC LIMIT 1")
    case $p in /*) ;; *) p=$RUN/$p ;; esac
    echo "$p"
}

"$BIN" world build "$W" --size "$SIZE" --seed "$SEED"
step "world build"
[ -f "$TOK" ] || "$BIN" tokenizer train --corpus "$W/corpus.txt" --vocab "$VOCAB" --out "$TOK" -q
step "tokenizer train"
"$BIN" pretrain --corpus "$W/corpus.txt" --tokenizer "$TOK" --config tiny --dim "$DIM" \
    --layers "$LAYERS" --heads "$HEADS" --kv-heads "$HEADS" --seq "$SEQ" --batch "$PT_BATCH" \
    --steps "$PT_STEPS" --eval-every 100 --ckpt-every 100 "${G[@]}" --out "$PT" | tail -4
step "pretrain ($PT_STEPS steps)"

if [ ! -f "$RUN/rlhf.db" ]; then
    "$BIN" init "$RUN" -q
    "$BIN" import "$RUN" "$W/prompts_train_safe.json" --format prompt-list -q
    "$BIN" import "$RUN" "$W/prompts_train_unsafe.json" --format prompt-list --unsafe -q
    "$BIN" import "$RUN" "$W/prompts_eval_safe.json" --format prompt-list --split-eval 1 -q
    "$BIN" import "$RUN" "$W/prompts_eval_unsafe.json" --format prompt-list --unsafe --split-eval 1 -q
    "$BIN" import "$RUN" "$W/sft.json" -q
    "$BIN" import "$RUN" "$W/pairs_helpfulness.csv" -q
    "$BIN" import "$RUN" "$W/pairs_safety.csv" -q
    "$BIN" import "$RUN" "$W/pairs_helpfulness_eval.csv" --split-eval 1 -q
    "$BIN" import "$RUN" "$W/pairs_safety_eval.csv" --split-eval 1 -q
fi
step "init + import"

"$BIN" sft "$RUN" --init "$PT/model.bin" --tokenizer "$TOK" --epochs "$SFT_EPOCHS" --lr "$SFT_LR" \
    --batch 8 --seed "$SFT_SEED" "${G[@]}" -q
SFT=$(ckpt sft)
step "sft ($SFT)"

for t in helpfulness safety; do
    "$BIN" rm train "$RUN" --track $t --init "$PT/model.bin" --tokenizer "$TOK" --batch 16 \
        --micro-batch 8 --epochs "$RM_EPOCHS" --lr "$RM_LR" --seq "$RM_SEQ" --name rm-$t "${G[@]}" -q
    step "rm train $t"
    "$BIN" rm eval "$RUN" --model "$RUN/ckpt/rm-$t/hf" --tokenizer "$TOK" --split eval --track $t \
        "${G[@]}" | tee "$OUT/rm_eval_$t.txt"
    step "rm eval $t"
done

"$BIN" sample "$RUN" --policy "$SFT" --tokenizer "$TOK" --round 100 --prompts eval --k "$K" \
    --max-new "$MAXNEW" --seed 7 "${G[@]}" -q
step "sample eval prompts, SFT policy (round 100)"
"$BIN" world judge "$RUN" --world "$W" --round 100 | tee "$OUT/judge_sft.txt"

"$BIN" rs round "$RUN" --round 1 --tokenizer "$TOK" --rm-helpfulness "$RUN/ckpt/rm-helpfulness/hf" \
    --rm-safety "$RUN/ckpt/rm-safety/hf" --k "$K" --max-new "$MAXNEW" --lr "$RS_LR" \
    --epochs "$RS_EPOCHS" --batch 8 --seed 1 "${G[@]}" | tail -5
RS1=$(ckpt policy)
step "rs round 1 ($RS1)"
"$BIN" sample "$RUN" --policy "$RS1" --tokenizer "$TOK" --round 101 --prompts eval --k "$K" \
    --max-new "$MAXNEW" --seed 7 "${G[@]}" -q
step "sample eval prompts, RS round 1 policy (round 101)"
"$BIN" world judge "$RUN" --world "$W" | tee "$OUT/judge_all.txt"
"$BIN" world compare "$RUN" --world "$W" --a 100 --b 101 | tee "$OUT/compare_sft_rs1.txt"
step "judge + compare"
