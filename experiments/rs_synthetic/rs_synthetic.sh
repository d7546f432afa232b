#!/usr/bin/env bash
# rs_synthetic.sh: one rejection-sampling round on a synthetic task whose reward is known (issue 6,
# acceptance 3). The task, the gold rule and the report are in experiments/rs_synthetic/rs_synthetic.py.
#
#   RLHF_BIN=build/rlhf experiments/rs_synthetic/rs_synthetic.sh /tmp/rs_synthetic
#
# Steps (each command resumes if rerun): data -> run with prompts (train/eval), SFT demonstrations,
# preference pairs -> rlhf sft (policy 0 from aidreams260K) -> rm train helpfulness, safety ->
# rm eval -> rs round 1 (train prompts, K samples) -> rlhf sample of the eval prompts by the SFT
# policy (round 90) and by round 1's policy (round 91), same seed -> export -> gold report.
# Environment: RLHF_BIN, RLHF_SHARED, PY (default /usr/bin/python3), THREADS (1), K (8), TEMP (1.0),
# RS_LR (5e-4), RS_EPOCHS (2). Exit 2 when a shared file is missing.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
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
. "$SRC/experiments/rs_synthetic/synthetic_world.sh"

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
"$PY" "$SRC/experiments/rs_synthetic/rs_synthetic.py" report "$RUN" --eval-before 90 --eval-after 91 --round 1 \
    | tee "$OUT/report.md"
