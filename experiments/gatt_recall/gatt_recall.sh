#!/usr/bin/env bash
# gatt_recall.sh: issue 8, acceptance 3 -- does SFT with Ghost Attention data raise the recall of a
# system instruction at later turns? Two fine-tunings of the same policy on the same dialogues:
#   plain  SFT on the source dialogues only (imported as they are);
#   gatt   SFT on the same dialogues plus the GAtt dialogues `rlhf gatt generate` made from them
#          (instruction at the start, the policy's own answers, loss on the last answer only);
# then `rlhf gatt eval` of both (and of the policy itself) with the same seed: recall by turn.
#
#   RLHF_BIN=build/rlhf experiments/gatt_recall/gatt_recall.sh POLICY TOKENIZER DIALOGUES [WORKDIR] [STAGE...]
# STAGE: plain gatt eval (default: all, in that order). Every stage resumes when run again.
# Tunables (environment): N (GAtt dialogues, 200), K (samples per turn, 4), TURNS (20), EVAL_N
# (50), EPOCHS (2), LR (2e-5), SEQ (SFT row length: the model's seq_len), THREADS (1), RM (a reward
# model for best-of-K, none). The tables go to WORKDIR/gatt_recall.md; copy them to
# experiments/gatt_recall/README.md with the command line used. The model needs a context that holds several
# turns (aidreams260K's 128 tokens hold one probe only: use the demo world's model).
set -eu
BIN=${RLHF_BIN:-build/rlhf}
if [ $# -lt 3 ]; then
  sed -n '2,16p' "$0" >&2
  exit 2
fi
POLICY=$1 TOK=$2 DLG=$3
W=${4:-/tmp/gatt_recall}
shift 3
shift || true
STAGES=${*:-plain gatt eval}
N=${N:-200} K=${K:-4} TURNS=${TURNS:-20} EVAL_N=${EVAL_N:-50} EPOCHS=${EPOCHS:-2} LR=${LR:-2e-5}
THREADS=${THREADS:-1}
SEQ_OPT=()
[ -n "${SEQ:-}" ] && SEQ_OPT=(--seq "$SEQ")
RM_OPT=()
[ -n "${RM:-}" ] && RM_OPT=(--rm "$RM")
mkdir -p "$W"
sft_ckpt() { sqlite3 "$1/rlhf.db" "select path from checkpoints where role = 'sft' order by id desc limit 1"; }
for s in $STAGES; do
  case $s in
  plain)
    [ -f "$W/plain/rlhf.db" ] || $BIN init "$W/plain"
    $BIN import "$W/plain" "$DLG" -q
    $BIN sft "$W/plain" --init "$POLICY" --tokenizer "$TOK" --epochs "$EPOCHS" --lr "$LR" \
      "${SEQ_OPT[@]}" --threads "$THREADS" ;;
  gatt)
    [ -f "$W/gatt/rlhf.db" ] || $BIN init "$W/gatt"
    $BIN import "$W/gatt" "$DLG" -q
    $BIN gatt generate "$W/gatt" --dialogues "$DLG" --policy "$POLICY" --tokenizer "$TOK" \
      --n "$N" -k "$K" "${RM_OPT[@]}" --threads "$THREADS"
    $BIN sft "$W/gatt" --init "$POLICY" --tokenizer "$TOK" --epochs "$EPOCHS" --lr "$LR" \
      "${SEQ_OPT[@]}" --threads "$THREADS" ;;
  eval)
    out=$W/gatt_recall.md
    : >"$out"
    for name in base plain gatt; do
      case $name in
      base) run=$W/gatt ckpt=$POLICY ;;
      *) run=$W/$name ckpt=$(sft_ckpt "$W/$name") ;;
      esac
      echo "## $name ($ckpt)" >>"$out"
      echo '```' >>"$out"
      $BIN gatt eval "$run" --policy "$ckpt" --tokenizer "$TOK" --turns "$TURNS" --n "$EVAL_N" \
        --threads "$THREADS" -q | tee -a "$out"
      echo '```' >>"$out"
    done
    echo "tables: $out" ;;
  *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
