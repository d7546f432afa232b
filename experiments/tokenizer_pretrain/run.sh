#!/usr/bin/env bash
# run.sh: the two pretraining runs of experiments/tokenizer_pretrain/README.md, with the commands
# given there: (1) the tiny preset with the aidreams 512-token tokenizer, 600 steps; (2) a 4096-piece
# tokenizer trained by `rlhf tokenizer train` on the corpus, then the tiny preset with it, 800 steps.
#
#   RLHF_BIN=build/rlhf experiments/tokenizer_pretrain/run.sh [WORKDIR] [STAGE...]
# STAGE: tiny512 tok4096 tiny4096 (default: all). Run from the repository root (../shared beside it,
# or RLHF_SHARED). Exit 2 when a shared file is missing. About 6 + 25 minutes on 2 shared cores.
set -eu
BIN=${RLHF_BIN:-build/rlhf}
SHARED=${RLHF_SHARED:-../shared}
W=${1:-/tmp/tokenizer_pretrain}
shift || true
STAGES=${*:-tiny512 tok4096 tiny4096}
C=$SHARED/data/corpus
CORPUS="$C/tiny_shakespeare.txt.gz $C/kjv.txt.gz $C/janeausten.txt.gz $C/brown.txt.gz"
for f in $CORPUS "$SHARED/models/aidreams260K_tok512.bin"; do
  [ -f "$f" ] || { echo "run.sh: missing $f" >&2; exit 2; }
done
mkdir -p "$W"
for s in $STAGES; do
  case $s in
  tiny512)
    $BIN pretrain --corpus $CORPUS --tokenizer "$SHARED/models/aidreams260K_tok512.bin" \
      --config tiny --batch 8 --steps 600 --eval-every 100 --val-windows 64 --ckpt-every 100 \
      --threads 1 --out "$W/pretrain-tiny" ;;
  tok4096)
    $BIN tokenizer train --corpus $CORPUS --vocab 4096 --out "$W/acc3/tok4096.model" ;;
  tiny4096)
    $BIN pretrain --corpus $CORPUS --tokenizer "$W/acc3/tok4096.model" --config tiny --batch 8 \
      --steps 800 --eval-every 100 --val-windows 64 --ckpt-every 200 --threads 2 \
      --out "$W/acc3/run" ;;
  *) echo "run.sh: unknown stage $s" >&2; exit 2 ;;
  esac
done
