# synthetic_world.sh: the synthetic known-reward world shared by rs_synthetic.sh and ppo_synthetic.sh,
# SOURCED by them (not run): expects SRC BIN SHARED PY OUT THREADS set; defines MODEL TOK G RUN D SFT
# and builds, each step resuming if rerun: data (rs_synthetic.py make) -> run with prompts
# (train/eval), SFT demonstrations, preference pairs -> rlhf sft (policy 0 from aidreams260K) ->
# rm train helpfulness, safety -> rm eval. Exit 2 when a shared file is missing.
MODEL=$SHARED/models/aidreams260K.bin
TOK=$SHARED/models/aidreams260K_tok512.bin
for f in "$MODEL" "$TOK"; do [ -f "$f" ] || { echo "missing $f" >&2; exit 2; }; done
G=(--threads "$THREADS")
RUN=$OUT/run
D=$OUT/data

"$PY" "$SRC/experiments/rs_synthetic/rs_synthetic.py" make "$D"
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
