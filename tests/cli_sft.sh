#!/usr/bin/env bash
# cli_sft.sh: end-to-end checks of `rlhf sft`, `rlhf sample`, `rlhf rs select`, `rlhf rs report`
# with the shared aidreams260K model and its tokenizer on a few dialogues and prompts.
#
#   cli-sft-01  sft on dialogues: the loss goes down; an HF checkpoint is registered (role sft,
#               parent the init); metrics in the store; rerunning says it is done
#   cli-sft-02  sft stopped after 3 steps (--stop-after) and rerun: weights byte-identical to the
#               uninterrupted run
#   cli-sft-03  sample: K per prompt with provenance; --batch 1 and --batch 3 (stopped after one
#               group, then resumed) give identical samples; no duplicates, none missing
#   cli-sft-04  kill -9 during sampling, then the same command: every sample exactly once
#   cli-sft-05  scores (written here) -> rs select -> rs report (metrics + SVG) -> sft on the
#               selections registers a policy checkpoint
#
# Environment: RLHF_BIN, RLHF_SHARED, RLHF_SRC. Exit 0 passed, 1 failed, 77 skipped.
set -u

. "$(dirname "$0")/lib.sh"
TOK=$SHARED/models/aidreams260K_tok512.bin
MODEL=$SHARED/models/aidreams260K.bin
need_files "$TOK" "$MODEL"
need_cmd sqlite3 "to read the store"
BGPID=
at_exit() { [ -n "$BGPID" ] && kill -9 "$BGPID" 2>/dev/null; }

# a few dialogues (ShareGPT) and prompts (a prompt list)
cat >"$TMP/dialogues.json" <<'EOF'
[
{"id": "a", "conversations": [{"from": "human", "value": "What is the sea?"}, {"from": "gpt", "value": "The sea is a big body of salt water."}]},
{"id": "b", "conversations": [{"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello, my friend."}, {"from": "human", "value": "Again."}, {"from": "gpt", "value": "Hello again, my friend."}]},
{"id": "c", "conversations": [{"from": "human", "value": "Name a color."}, {"from": "gpt", "value": "Blue, like the sky."}]},
{"id": "d", "conversations": [{"from": "human", "value": "Count to three."}, {"from": "gpt", "value": "One, two, three."}]},
{"id": "e", "conversations": [{"from": "human", "value": "What do cats like?"}, {"from": "gpt", "value": "Cats like to sleep in the sun."}]},
{"id": "f", "conversations": [{"from": "human", "value": "Is the sky blue?"}, {"from": "gpt", "value": "Yes, the sky is blue on a clear day."}]}
]
EOF
printf '["Tell me about the moon.", "What is a tree?", "Say something kind.", "Why is the sea salty?", "Name an animal."]\n' >"$TMP/prompts.json"

setup_run() {
    "$BIN" init "$1" -q && "$BIN" import "$1" "$TMP/dialogues.json" -q &&
        "$BIN" import "$1" "$TMP/prompts.json" --format prompt-list -q
}
A=$TMP/a
B=$TMP/b
setup_run "$A" && setup_run "$B"
check cli-sft-00 "two runs set up" $?

SFT=(--init "$MODEL" --tokenizer "$TOK" --epochs 3 --batch 2 --lr 2e-3 --seq 64 -q)
"$BIN" sft "$A" "${SFT[@]}" >"$TMP/sft_a.out" 2>&1
check cli-sft-01 "sft on dialogues exits 0" $?
first=$(q "$A" "select value from metrics where name='sft/loss' order by step limit 1")
last=$(q "$A" "select value from metrics where name='sft/loss' order by step desc limit 1")
echo "     sft loss: first step $first, last step $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.8) }'
check cli-sft-01 "loss goes down by 20% or more" $?
CK=$(q "$A" "select path from checkpoints where role='sft'")
[ -f "$CK/config.json" ] && [ -f "$CK/model.safetensors" ] &&
    [ "$(q "$A" "select parent_id is not null from checkpoints where role='sft'")" = 1 ]
check cli-sft-01 "HF checkpoint $CK registered with its parent" $?
"$BIN" sft "$A" --init "$MODEL" --tokenizer "$TOK" --epochs 3 --batch 2 --lr 2e-3 --seq 64 2>&1 |
    grep -q "already done"
check cli-sft-01 "rerun says done" $?
[ "$(q "$A" "select count(*) from checkpoints where role='sft'")" = 1 ]
check cli-sft-01 "still one sft checkpoint" $?

"$BIN" sft "$B" "${SFT[@]}" --stop-after 3 >/dev/null 2>&1 && "$BIN" sft "$B" "${SFT[@]}" >/dev/null 2>&1
check cli-sft-02 "stopped at step 3 and resumed" $?
CKB=$(q "$B" "select path from checkpoints where role='sft'")
cmp -s "$CK/model.safetensors" "$CKB/model.safetensors"
check cli-sft-02 "weights byte-identical to the uninterrupted run" $?

SMP=(--tokenizer "$TOK" --round 1 --k 3 --temperature 1.0 --max-new 24 --prompts all --seed 7 -q)
"$BIN" sample "$A" --policy "$CK" "${SMP[@]}" --batch 1
check cli-sft-03 "sample --batch 1" $?
"$BIN" sample "$B" --policy "$CKB" "${SMP[@]}" --batch 3 --stop-after 1 &&
    "$BIN" sample "$B" --policy "$CKB" "${SMP[@]}" --batch 3
check cli-sft-03 "sample --batch 3, stopped after one group, resumed" $?
SEL="select prompt_id, idx, seed, temperature, hex(tokens), text, finish from samples order by prompt_id, idx"
[ "$(q "$A" "$SEL" | md5sum)" = "$(q "$B" "$SEL" | md5sum)" ]
check cli-sft-03 "same samples (seeds, tokens, text, finish) whatever the batch and the stop" $?
# log-probs: the same up to float rounding (a batched matmul's sums depend on its row count)
python3 - "$A/rlhf.db" "$B/rlhf.db" <<'PY'
import sqlite3, struct, sys
def lp(db):
    c = sqlite3.connect(db)
    return {(p, i): struct.unpack('<%df' % (len(b) // 4), b) for p, i, b in
            c.execute("select prompt_id, idx, logprobs from samples")}
a, b = lp(sys.argv[1]), lp(sys.argv[2])
d = max(abs(x - y) for k in a for x, y in zip(a[k], b[k]))
print("     max |log-prob difference| between the two batchings: %.3g" % d)
sys.exit(0 if a.keys() == b.keys() and d < 1e-4 else 1)
PY
check cli-sft-03 "log-probs equal within 1e-4" $?
n=$(q "$A" "select count(*) from samples"); np=$(q "$A" "select count(*) from prompts")
[ "$n" = $((np * 3)) ] && [ "$(q "$B" "select count(distinct prompt_id || '-' || idx) from samples")" = "$n" ]
check cli-sft-03 "$n samples = prompts x K, no duplicates" $?
[ "$(q "$A" "select count(*) from samples where checkpoint_id is null or length(logprobs) != length(tokens) or finish not in ('eos','length')")" = 0 ]
check cli-sft-03 "provenance, log-probs and finish on every sample" $?

# kill -9 in the middle of a longer sampling stage (round 2), then the same command
SMP2=(--tokenizer "$TOK" --round 2 --k 6 --max-new 100 --prompts all --seed 3 --batch 1 -q)
"$BIN" sample "$A" --policy "$CK" "${SMP2[@]}" &
BGPID=$!
for _ in $(seq 100); do # kill as soon as some (not all) groups are committed
    c=$(q "$A" "select count(*) from samples where round=2" 2>/dev/null || echo 0)
    [ "${c:-0}" -gt 0 ] && break
    sleep 0.05
done
kill -9 $BGPID 2>/dev/null
wait $BGPID 2>/dev/null
BGPID=
before=$(q "$A" "select count(*) from samples where round=2")
"$BIN" sample "$A" --policy "$CK" "${SMP2[@]}"
check cli-sft-04 "rerun after kill -9 (had $before round-2 samples)" $?
[ "$(q "$A" "select count(*) from samples where round=2")" = $((np * 6)) ] &&
    [ "$(q "$A" "select count(distinct prompt_id || '-' || idx) from samples where round=2")" = $((np * 6)) ]
check cli-sft-04 "every round-2 sample exactly once" $?

# scores written here (a stand-in helpfulness model: the sample's length), then select/report/sft
echo "stand-in reward model" >"$TMP/rm.bin"
SHA=$(sha256sum "$TMP/rm.bin" | cut -c1-64)
q "$A" "insert into checkpoints (role, path, sha256, created_at) values ('reward-helpfulness', '$TMP/rm.bin', '$SHA', 'now');
        insert into scores (sample_id, checkpoint_id, value) select id, (select id from checkpoints where role='reward-helpfulness'), length(tokens) / 4.0 from samples;"
"$BIN" rs select "$A" --round 2 -q
check cli-sft-05 "rs select" $?
[ "$(q "$A" "select count(*) from selections where round=2")" = "$np" ] &&
    [ "$(q "$A" "select count(*) from selections s join samples x on x.id = s.sample_id where s.round = 2 and length(x.tokens) < (select max(length(tokens)) from samples y where y.prompt_id = s.prompt_id)")" = 0 ]
check cli-sft-05 "one selection per prompt, the longest sample over rounds 1-2" $?
"$BIN" rs report "$A" --round 2 -q && [ -s "$A/report/best_of_k_round2.svg" ] &&
    [ "$(q "$A" "select count(*) from metrics where name like 'rs/best_of_k_%'")" = 12 ]
check cli-sft-05 "rs report: 2 x 6 metrics and the SVG" $?
"$BIN" sft "$A" --init "$CK" --tokenizer "$TOK" --data selections --round 2 --epochs 1 --batch 2 --seq 64 -q &&
    [ "$(q "$A" "select count(*) from checkpoints where role='policy' and parent_id is not null")" = 1 ]
check cli-sft-05 "sft on the selections registers a policy checkpoint" $?

"$BIN" sft "$A" --init "$CK" --tokenizer "$TOK" --data nonsense 2>/dev/null
[ $? -eq 2 ]
check cli-sft-06 "bad --data is a usage error" $?
"$BIN" sample "$A" --policy "$TMP/none.bin" --tokenizer "$TOK" --round 1 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "none.bin" "$TMP/err"
check cli-sft-06 "missing policy names the file" $?

finish
