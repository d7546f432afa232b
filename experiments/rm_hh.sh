#!/usr/bin/env bash
# rm_hh.sh: issue 5, acceptance 2 -- helpfulness and safety reward models on real HH-RLHF pairs,
# each initialized from a base model this toolkit pretrained itself. Results: experiments/README.md
# ("Reward models on HH-RLHF").
#
#   RLHF_BIN=build/rlhf experiments/rm_hh.sh [WORKDIR] [STAGE...]
# STAGE: tok pretrain import rm-help rm-safe eval (default: all, in that order). Every stage
# resumes where it stopped when run again. Keep the whole run to ~25 CPU minutes on 2 cores.
set -eu
BIN=${RLHF_BIN:-build/rlhf}
SHARED=${RLHF_SHARED:-../shared}
W=${1:-/tmp/rm_hh}
shift || true
STAGES=${*:-tok pretrain import rm-help rm-safe eval}
C=$SHARED/data/corpus
H=$SHARED/data/hh-rlhf
THREADS=${THREADS:-1}   # one thread: the 2 cores are shared (see the pretraining section)
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
  *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
