#!/usr/bin/env bash
# rm_hh.sh: issue 5, acceptance 2 -- helpfulness and safety reward models on real HH-RLHF pairs,
# each initialized from a base model this toolkit pretrained itself. Results:
# experiments/rm_hh/README.md.
#
#   RLHF_BIN=build/rlhf experiments/rm_hh/rm_hh.sh [WORKDIR] [STAGE...]
# STAGE: tok pretrain import rm-help rm-safe eval safe-val safe-sweep rm-safe2 eval-safe2
# (default: all, in that order). Every stage resumes where it stopped when run again. The first
# six are the first round (~25 CPU minutes); the last four are the second safety round (~30 CPU
# minutes, one thread): settings compared on a validation set carved from the safety train split,
# then the chosen one trained on the whole train split and evaluated once on the eval split.
set -eu
BIN=${RLHF_BIN:-build/rlhf}
SHARED=${RLHF_SHARED:-../shared}
W=${1:-/tmp/rm_hh}
shift || true
STAGES=${*:-tok pretrain import rm-help rm-safe eval safe-val safe-sweep rm-safe2 eval-safe2}
C=$SHARED/data/corpus
H=$SHARED/data/hh-rlhf
THREADS=${THREADS:-1}   # one thread: the 2 cores are shared (see the pretraining section)
# second safety round: the settings compared on the validation pairs (name:lr:epochs), and the
# one chosen for the final safety RM (chosen on validation accuracy only, before the eval split
# was looked at)
SAFE_SWEEP=${SAFE_SWEEP:-"s-lr1e-3-e2:1e-3:2 s-lr2e-4-e2:2e-4:2"}
SAFE_LR=${SAFE_LR:-2e-4}
SAFE_EPOCHS=${SAFE_EPOCHS:-2}
mkdir -p "$W"
for s in $STAGES; do
  case $s in
  tok)
    $BIN tokenizer train --corpus $C/*.txt.gz --vocab 2048 --out "$W/tok.model" ;;
  pretrain)
    $BIN pretrain --corpus $C/*.txt.gz --tokenizer "$W/tok.model" --config tiny --batch 8 \
      --steps 400 --eval-every 100 --val-windows 32 --ckpt-every 100 --threads $THREADS \
      --out "$W/base" ;;
  import)
    [ -f "$W/run/rlhf.db" ] || $BIN init "$W/run"
    $BIN import "$W/run" $H/helpful-base_test.jsonl.gz $H/helpful-online_test.jsonl.gz \
      $H/helpful-rejection-sampled_test.jsonl.gz --track helpfulness --split-eval 0.1
    $BIN import "$W/run" $H/harmless-base_test.jsonl.gz --track safety --split-eval 0.1 ;;
  rm-help)
    $BIN rm train "$W/run" --track helpfulness --init "$W/base/model.bin" \
      --tokenizer "$W/tok.model" --name rm-help --seq 256 --batch 16 --micro-batch 4 \
      --mix 0 --lr 2e-4 --max-pairs 2400 --threads $THREADS ;;
  rm-safe)
    $BIN rm train "$W/run" --track safety --init "$W/base/model.bin" \
      --tokenizer "$W/tok.model" --name rm-safe --seq 256 --batch 16 --micro-batch 4 \
      --mix 0.1 --lr 2e-4 --max-pairs 2400 --threads $THREADS ;;
  eval)
    $BIN rm eval "$W/run" --model "$W/run/ckpt/rm-help/hf" --tokenizer "$W/tok.model" \
      --split eval --track helpfulness --threads $THREADS | tee "$W/eval-help.txt"
    $BIN rm eval "$W/run" --model "$W/run/ckpt/rm-safe/hf" --tokenizer "$W/tok.model" \
      --split eval --track safety --threads $THREADS | tee "$W/eval-safe.txt" ;;
  safe-val)
    # a validation run: the same helpfulness import, harmless-base with --split-eval 0.2. The
    # split is a threshold on a content hash, so its eval split (0.2) holds the main run's eval
    # split (0.1) plus ~10% more; those extra pairs (not in the main eval split, not in this run's
    # train split) are the validation set, written back in HH format for `rm eval --pairs`.
    [ -f "$W/val/rlhf.db" ] || $BIN init "$W/val"
    $BIN import "$W/val" $H/helpful-base_test.jsonl.gz $H/helpful-online_test.jsonl.gz \
      $H/helpful-rejection-sampled_test.jsonl.gz --track helpfulness --split-eval 0.1
    $BIN import "$W/val" $H/harmless-base_test.jsonl.gz --track safety --split-eval 0.2
    $BIN export "$W/val" --what pairs --out "$W/val_pairs.jsonl"
    $BIN export "$W/run" --what pairs --out "$W/run_pairs.jsonl"
    python3 - "$W" "$H/harmless-base_test.jsonl.gz" <<'EOF'
import gzip, json, sys
w, raw = sys.argv[1], sys.argv[2]
load = lambda f: [json.loads(l) for l in open(f)]
key = lambda p: (json.dumps(p["context"]), p["chosen"], p["rejected"])
main_eval = {key(p) for p in load(w + "/run_pairs.jsonl")
             if p["track"] == "safety" and p["split"] == "eval"}
val = [p for p in load(w + "/val_pairs.jsonl") if p["track"] == "safety"]
recs = [json.loads(l) for l in gzip.open(raw, "rt")]
assert len(val) == len(recs)  # every harmless-base record imported, in file order
keep = [r for p, r in zip(val, recs) if p["split"] == "eval" and key(p) not in main_eval]
with gzip.open(w + "/safety_valid_hh.jsonl.gz", "wt") as f:
    for r in keep: f.write(json.dumps(r) + "\n")
print("validation pairs:", len(keep), "of", len(recs), "(main eval split:", len(main_eval), ")")
EOF
    ;;
  safe-sweep)
    for cfg in $SAFE_SWEEP; do
      IFS=: read -r name lr ep <<<"$cfg"
      $BIN rm train "$W/val" --track safety --init "$W/base/model.bin" \
        --tokenizer "$W/tok.model" --name "$name" --seq 256 --batch 16 --micro-batch 4 \
        --mix 0.1 --lr "$lr" --epochs "$ep" --threads $THREADS
      $BIN rm eval "$W/val" --model "$W/val/ckpt/$name/hf" --tokenizer "$W/tok.model" \
        --pairs "$W/safety_valid_hh.jsonl.gz" --threads $THREADS | tee "$W/valid-$name.txt"
    done ;;
  rm-safe2)
    $BIN rm train "$W/run" --track safety --init "$W/base/model.bin" \
      --tokenizer "$W/tok.model" --name rm-safe2 --seq 256 --batch 16 --micro-batch 4 \
      --mix 0.1 --lr $SAFE_LR --epochs $SAFE_EPOCHS --threads $THREADS ;;
  eval-safe2)
    $BIN rm eval "$W/run" --model "$W/run/ckpt/rm-safe2/hf" --tokenizer "$W/tok.model" \
      --split eval --track safety --threads $THREADS | tee "$W/eval-safe2.txt" ;;
  *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
