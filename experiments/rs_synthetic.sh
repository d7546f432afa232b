#!/usr/bin/env bash
# rs_synthetic.sh: one rejection-sampling round on a synthetic task whose reward is known (issue 6,
# acceptance 3). The task, the gold rule and the report are in experiments/rs_synthetic.py.
#
#   RLHF_BIN=build/rlhf experiments/rs_synthetic.sh /tmp/rs_synthetic
#
# Steps (each command resumes if rerun): data -> run with prompts (train/eval), SFT demonstrations,
# preference pairs -> rlhf sft (policy 0 from aidreams260K) -> rm train helpfulness, safety ->
# rm eval -> rs round 1 (train prompts, K samples) -> rlhf sample of the eval prompts by the SFT
# policy (round 90) and by round 1's policy (round 91), same seed -> export -> gold report.
# Environment: RLHF_BIN, RLHF_SHARED, PY (default /usr/bin/python3), THREADS (1), K (8), TEMP (1.0),
# RS_LR (5e-4), RS_EPOCHS (2). Exit 2 when a shared file is missing.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${RLHF_BIN:-$SRC/build/rlhf}
SHARED=${RLHF_SHARED:-$SRC/../shared}
PY=${PY:-/usr/bin/python3}
OUT=${1:-/tmp/rs_synthetic}
THREADS=${THREADS:-1}
K=${K:-8}
TEMP=${TEMP:-1.0}
RS_LR=${RS_LR:-5e-4}
RS_EPOCHS=${RS_EPOCHS:-2}
MAXNEW=${MAXNEW:-40}
MODEL=$SHARED/models/aidreams260K.bin
TOK=$SHARED/models/aidreams260K_tok512.bin
for f in "$MODEL" "$TOK"; do [ -f "$f" ] || { echo "missing $f" >&2; exit 2; }; done
G=(--threads "$THREADS")
RUN=$OUT/run
D=$OUT/data

"$PY" "$SRC/experiments/rs_synthetic.py" make "$D"
if [ ! -f "$RUN/rlhf.db" ]; then
    "$BIN" init "$RUN" -q
fi
# eval prompts: --split-eval 1 (all eval); train prompts: split 0. Imports resume / are not repeated.
"$BIN" import "$RUN" "$D/prompts_train_safe.json" --format prompt-list -q
"$BIN" import "$RUN" "$D/prompts_train_unsafe.json" --format prompt-list --unsafe -q
"$BIN" import "$RUN" "$D/prompts_eval_safe.json" --format prompt-list --split-eval 1 -q
"$BIN" import "$RUN" "$D/prompts_eval_unsafe.json" --format prompt-list --unsafe --split-eval 1 -q
"$BIN" import "$RUN" "$D/dialogues.json" -q
"$BIN" import "$RUN" "$D/pairs.csv" --split-eval 0.15 -q

# policy 0: SFT of the tiny pretrained base on the mixed-quality demonstrations
"$BIN" sft "$RUN" --init "$MODEL" --tokenizer "$TOK" --epochs 2 --batch 8 --lr 1e-3 "${G[@]}" -q
SFT=$(sqlite3 "$RUN/rlhf.db" "SELECT path FROM checkpoints WHERE role = 'sft' ORDER BY id DESC LIMIT 1")
case $SFT in /*) ;; *) SFT=$RUN/$SFT ;; esac # registered as the HF directory

# reward models from the same base
for t in helpfulness safety; do
    "$BIN" rm train "$RUN" --track $t --init "$MODEL" --tokenizer "$TOK" --batch 16 --micro-batch 8 \
        --epochs 2 --lr 1e-3 --name rm-$t "${G[@]}" -q
    "$BIN" rm eval "$RUN" --model "$RUN/ckpt/rm-$t/hf" --tokenizer "$TOK" --split eval --track $t "${G[@]}" \
        | tee "$OUT/rm_eval_$t.txt"
done

# one rejection-sampling round on the train prompts
"$BIN" rs round "$RUN" --round 1 --tokenizer "$TOK" --rm-helpfulness "$RUN/ckpt/rm-helpfulness/hf" \
    --rm-safety "$RUN/ckpt/rm-safety/hf" --k "$K" --temperature "$TEMP" --max-new "$MAXNEW" \
    --lr "$RS_LR" --epochs "$RS_EPOCHS" --batch 8 --seed 1 "${G[@]}" | tee "$OUT/round1.txt"
POL=$(sqlite3 "$RUN/rlhf.db" "SELECT path FROM checkpoints WHERE role = 'policy' ORDER BY id DESC LIMIT 1")
case $POL in /*) ;; *) POL=$RUN/$POL ;; esac

# held-out prompts, before (SFT policy) and after (round 1's policy), same seeds
"$BIN" sample "$RUN" --policy "$SFT" --tokenizer "$TOK" --round 90 --prompts eval --k "$K" \
    --temperature "$TEMP" --max-new "$MAXNEW" --seed 7 "${G[@]}" -q
"$BIN" sample "$RUN" --policy "$POL" --tokenizer "$TOK" --round 91 --prompts eval --k "$K" \
    --temperature "$TEMP" --max-new "$MAXNEW" --seed 7 "${G[@]}" -q

mkdir -p "$RUN/export"
for w in prompts samples selections; do
    "$BIN" export "$RUN" --what $w --out "$RUN/export/$w.jsonl" -q
done
"$PY" "$SRC/experiments/rs_synthetic.py" report "$RUN" --eval-before 90 --eval-after 91 --round 1 \
    | tee "$OUT/report.md"
