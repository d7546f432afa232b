#!/usr/bin/env bash
# ppo_synthetic.sh: PPO through `rlhf ppo` on the synthetic task whose reward is known (issue 7,
# acceptance 2): the world, SFT policy, reward models and held-out split of rs_synthetic.sh
# (experiments/rs_synthetic/synthetic_world.sh), then one PPO run per beta (same seed, sizes, iterations), and
# the GOLD reward (rs_synthetic.py's rule) of checkpoints iter-k on the 65 held-out prompts.
#
#   RLHF_BIN=build/rlhf experiments/ppo_synthetic/ppo_synthetic.sh /tmp/ppo_synthetic
#
# OUT may be an rs_synthetic.sh work dir (reused: rounds 1/90/91 there, 100.. here).
# Steps (each resumes if rerun): synthetic_world.sh -> rlhf sample --prompts eval by the SFT
# policy (round 100, K_EVAL per prompt, seed 7) -> for each beta (run j = 0, 1, ...):
# rlhf ppo (ITERS+1 iterations, so iteration k+1's rollouts give KL / RM reward of checkpoint
# iter-k) -> rlhf sample --prompts eval of iter-k for k in EVAL_ITERS (round 200+100j+k, seed 7:
# the same per-(prompt, sample) seeds for every checkpoint) -> report (ppo_synthetic.py).
# Environment: RLHF_BIN, RLHF_SHARED, PY (/usr/bin/python3), THREADS (1), BETAS ("0.01 1.0"),
# ITERS (40), BATCH (64), MINIBATCH (16), LR (1e-4), MAXNEW (40), K_EVAL (16),
# EVAL_ITERS ("4 8 12 16 20 30 40"). Exit 2 when a shared file is missing.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${RLHF_BIN:-$SRC/build/rlhf}
SHARED=${RLHF_SHARED:-$SRC/../shared}
PY=${PY:-/usr/bin/python3}
OUT=${1:-/tmp/ppo_synthetic}
THREADS=${THREADS:-1}
BETAS=${BETAS:-0.01 1.0}
ITERS=${ITERS:-40}
BATCH=${BATCH:-64}
MINIBATCH=${MINIBATCH:-16}
LR=${LR:-1e-4}
MAXNEW=${MAXNEW:-40}
K_EVAL=${K_EVAL:-16}
EVAL_ITERS=${EVAL_ITERS:-4 8 12 16 20 30 40}
. "$SRC/experiments/rs_synthetic/synthetic_world.sh"
RMH=$RUN/ckpt/rm-helpfulness/hf
RMS=$RUN/ckpt/rm-safety/hf
SFT_ID=$(sqlite3 "$RUN/rlhf.db" "SELECT id FROM checkpoints WHERE role = 'sft' ORDER BY id DESC LIMIT 1")

# iteration 0: the SFT policy on the held-out prompts (shared by all runs)
"$BIN" sample "$RUN" --policy "$SFT" --tokenizer "$TOK" --round 100 --prompts eval --k "$K_EVAL" \
    --max-new "$MAXNEW" --seed 7 "${G[@]}" -q

SPECS=()
j=0
for beta in $BETAS; do
    "$BIN" ppo "$RUN" --policy "$SFT" --rm-helpfulness "$RMH" --rm-safety "$RMS" --tokenizer "$TOK" \
        --iterations $((ITERS + 1)) --batch "$BATCH" --minibatch "$MINIBATCH" --lr "$LR" --beta "$beta" \
        --max-new "$MAXNEW" --seed 1 "${G[@]}" | tee "$OUT/ppo_beta$beta.txt"
    ST=$(sqlite3 "$RUN/rlhf.db" "SELECT id FROM stages WHERE kind = 'ppo'
        AND json_extract(params, '\$.policy') = $SFT_ID
        AND abs(json_extract(params, '\$.beta') - $beta) <= 1e-6 * $beta
        AND abs(json_extract(params, '\$.lr') - $LR) <= 1e-6 * $LR
        AND json_extract(params, '\$.batch') = $BATCH AND json_extract(params, '\$.minibatch') = $MINIBATCH
        ORDER BY id DESC LIMIT 1")
    base=$((200 + 100 * j))
    for k in $EVAL_ITERS; do
        "$BIN" sample "$RUN" --policy "$RUN/ckpt/ppo-$ST/iter-$k" --tokenizer "$TOK" --round $((base + k)) \
            --prompts eval --k "$K_EVAL" --max-new "$MAXNEW" --seed 7 "${G[@]}" -q
    done
    SPECS+=("beta=$beta:$ST:$base")
    j=$((j + 1))
done

"$PY" "$SRC/experiments/ppo_synthetic/ppo_synthetic.py" report "$RUN" --iters "0 $EVAL_ITERS" --round0 100 "${SPECS[@]}" \
    | tee "$OUT/report.md"
