#!/usr/bin/env bash
# cli_rs_round.sh: `rlhf rs round` end to end on a tiny run (aidreams260K as the base, its
# 512-token tokenizer, a few prompts, two small reward models trained here).
#
#   cli-rsr-01  a round: K samples per prompt, both reward models score each once, one selection
#               per prompt, a new policy checkpoint (parent: the checkpoint that sampled, here the SFT one),
#               the best-of-k report (SVG)
#   cli-rsr-02  the same round on a copy of the run, killed with kill -9 at several moments and
#               rerun until it finishes: the same samples, scores, selections and policy weights
#               as the uninterrupted round, each row once; integrity_check ok
#   cli-rsr-03  round 2 samples from round 1's policy (the newest policy checkpoint) and pools
#               the selections over both rounds; rerunning a finished round changes nothing
#
# Environment: RLHF_BIN, RLHF_SHARED, RLHF_SRC. Exit 0 passed, 1 failed, 77 skipped.
set -u

. "$(dirname "$0")/lib.sh"
TOK=$SHARED/models/aidreams260K_tok512.bin
MODEL=$SHARED/models/aidreams260K.bin
need_files "$TOK" "$MODEL"
need_cmd sqlite3 "to read the store"
need_cmd python3 "to generate test files"
BGPID=
at_exit() { [ -n "$BGPID" ] && kill -9 "$BGPID" 2>/dev/null; }

# ---- a run: dialogues for SFT, preference pairs for the reward models, prompts --------------------
python3 - "$TMP" <<'EOF'
import json, random, sys
d = sys.argv[1]
random.seed(3)
words = "the sea sky cat dog tree sun moon light water stone road".split()
def text(n): return " ".join(random.choice(words) for _ in range(n))
dia = [{"id": str(i), "conversations": [{"from": "human", "value": "Tell me about the %s." % w},
                                         {"from": "gpt", "value": "The %s is %s." % (w, text(5))}]}
       for i, w in enumerate(words)]
json.dump(dia, open(d + "/dialogues.json", "w"))
for name, n, good in (("help", 24, "the sun is light"), ("safe", 16, "sorry I cannot")):
    with open("%s/%s.jsonl" % (d, name), "w") as f:
        for i in range(n):
            ctx = "\n\nHuman: %s?" % text(4)
            f.write(json.dumps({"chosen": ctx + "\n\nAssistant: " + good + " " + text(2),
                                "rejected": ctx + "\n\nAssistant: " + text(5)}) + "\n")
json.dump(["Tell me about the sea.", "What is a tree?", "Say something kind.",
           "Why is the sky blue?", "Name an animal."], open(d + "/prompts.json", "w"))
EOF
A=$TMP/a
{ "$BIN" init "$A" -q && "$BIN" import "$A" "$TMP/dialogues.json" -q &&
  "$BIN" import "$A" "$TMP/prompts.json" --format prompt-list -q &&
  "$BIN" import "$A" "$TMP/help.jsonl" --track helpfulness -q &&
  "$BIN" import "$A" "$TMP/safe.jsonl" --track safety -q; } || { fail "run setup"; exit 1; }
"$BIN" sft "$A" --init "$MODEL" --tokenizer "$TOK" --epochs 1 --batch 2 --lr 1e-3 --threads 1 -q \
    >"$TMP/sft.out" 2>&1 || { fail "sft: $(tail -3 "$TMP/sft.out")"; exit 1; }
for t in helpfulness safety; do
    "$BIN" rm train "$A" --track $t --init "$MODEL" --tokenizer "$TOK" --batch 4 --epochs 1 \
        --lr 1e-3 --threads 1 --name rm-$t >"$TMP/rm-$t.out" 2>&1 ||
        { fail "rm train $t: $(tail -3 "$TMP/rm-$t.out")"; exit 1; }
done
B=$TMP/b
cp -r "$A" "$B" # the same run before any round, for the kill test

ROUND=(--tokenizer "$TOK" --rm-helpfulness "$A/ckpt/rm-helpfulness/hf" --rm-safety
       "$A/ckpt/rm-safety/hf" --k 3 --max-new 12 --epochs 1 --batch 2 --threads 1)
P=5 K=3

# ---- cli-rsr-01 -------------------------------------------------------------------------------------
if "$BIN" rs round "$A" --round 1 "${ROUND[@]}" >"$TMP/r1.out" 2>&1; then
    ok "cli-rsr-01 rs round 1 finished"
else fail "cli-rsr-01 rs round 1: $(tail -5 "$TMP/r1.out")"; fi
n_s=$(q "$A" "SELECT count(*) FROM samples WHERE round = 1")
n_sc=$(q "$A" "SELECT count(*) FROM scores")
n_dup=$(q "$A" "SELECT count(*) FROM (SELECT sample_id, checkpoint_id FROM scores GROUP BY 1, 2 HAVING count(*) > 1)")
n_sel=$(q "$A" "SELECT count(*) FROM selections WHERE round = 1")
n_pol=$(q "$A" "SELECT count(*) FROM checkpoints WHERE role = 'policy'")
parent=$(q "$A" "SELECT p.role FROM checkpoints c JOIN checkpoints p ON p.id = c.parent_id WHERE c.role = 'policy'")
if [ "$n_s" = $((P * K)) ] && [ "$n_sc" = $((2 * P * K)) ] && [ "$n_dup" = 0 ] && [ "$n_sel" = $P ] &&
    [ "$n_pol" = 1 ]; then
    ok "cli-rsr-01 $n_s samples, $n_sc scores (2 models), $n_sel selections, 1 policy checkpoint"
else fail "cli-rsr-01 samples $n_s (want $((P * K))), scores $n_sc, duplicates $n_dup, selections $n_sel, policies $n_pol"; fi
[ "$parent" = sft ] && ok "cli-rsr-01 round 1 fine-tuned the model that sampled (the SFT checkpoint)" ||
    fail "cli-rsr-01 policy parent role '$parent' (want sft)"
ls "$A"/report/*.svg >/dev/null 2>&1 && ok "cli-rsr-01 best-of-k report written" ||
    fail "cli-rsr-01 no SVG report in $A/report"
[ "$(q "$A" "SELECT status || ' ' || progress FROM stages WHERE kind = 'rs-round'")" = "done 5" ] ||
    fail "cli-rsr-01 rs-round stage: $(q "$A" "SELECT status, progress FROM stages WHERE kind = 'rs-round'")"

# ---- cli-rsr-02: kill -9 at several moments, rerun until done -----------------------------------------
kills=0 steps_seen=""
for i in $(seq 1 40); do # kill after 0.04 s, 0.08 s, ... until a run finishes on its own
    "$BIN" rs round "$B" --round 1 "${ROUND[@]}" >"$TMP/b.out" 2>&1 &
    BGPID=$!
    sleep "$(awk -v i=$i 'BEGIN { print 0.04 * i }')"
    if kill -9 $BGPID 2>/dev/null; then
        kills=$((kills + 1))
        steps_seen="$steps_seen $(q "$B" "SELECT coalesce(max(progress), 0) FROM stages WHERE kind = 'rs-round'" 2>/dev/null)"
    fi
    wait $BGPID 2>/dev/null
    BGPID=
    [ "$(q "$B" "SELECT count(*) FROM stages WHERE kind = 'rs-round' AND status = 'done'")" = 1 ] && break
done
echo "  killed $kills times; round steps completed at each kill:$steps_seen"
"$BIN" rs round "$B" --round 1 "${ROUND[@]}" >"$TMP/b.out" 2>&1 || fail "cli-rsr-02 final rerun: $(tail -5 "$TMP/b.out")"
same=1
for what in samples selections; do
    "$BIN" export "$A" --what $what -q | sed 's/"id": *[0-9]*,//g' | sort >"$TMP/a.$what"
    "$BIN" export "$B" --what $what -q | sed 's/"id": *[0-9]*,//g' | sort >"$TMP/b.$what"
done
sc() { q "$1" "SELECT s.prompt_id, s.idx, c.role, printf('%.6f', sc.value) FROM scores sc JOIN samples s ON s.id = sc.sample_id JOIN checkpoints c ON c.id = sc.checkpoint_id ORDER BY 1, 2, 3"; }
sc "$A" >"$TMP/a.scores"
sc "$B" >"$TMP/b.scores"
for what in samples selections scores; do
    cmp -s "$TMP/a.$what" "$TMP/b.$what" || { same=0; echo "  $what differ"; }
done
pa=$(q "$A" "SELECT path FROM checkpoints WHERE role = 'policy'")
pb=$(q "$B" "SELECT path FROM checkpoints WHERE role = 'policy'")
[ -n "$pa" ] && [ -n "$pb" ] && cmp -s "$pa/model.safetensors" "$pb/model.safetensors" || { same=0; echo "  policy weights differ"; }
n_dup=$(q "$B" "SELECT (SELECT count(*) FROM (SELECT sample_id, checkpoint_id FROM scores GROUP BY 1, 2 HAVING count(*) > 1)) + (SELECT count(*) - count(DISTINCT prompt_id || '-' || round || '-' || idx) FROM samples)")
[ "$same" = 1 ] && [ "$n_dup" = 0 ] && [ "$(q "$B" "SELECT count(*) FROM checkpoints WHERE role = 'policy'")" = 1 ] &&
    ok "cli-rsr-02 killed $kills times and rerun: samples, scores, selections and weights equal the uninterrupted round, no duplicates" ||
    fail "cli-rsr-02 after $kills kills: same=$same duplicates=$n_dup"
[ "$(q "$B" 'PRAGMA integrity_check')" = ok ] || fail "cli-rsr-02 integrity_check"

# ---- cli-rsr-03: round 2 from round 1's policy; rerun of a finished round ----------------------------
before=$(q "$A" "SELECT count(*) FROM samples")
"$BIN" rs round "$A" --round 1 "${ROUND[@]}" >"$TMP/r1b.out" 2>&1 || fail "cli-rsr-03 rerun of round 1"
[ "$(q "$A" "SELECT count(*) FROM samples")" = "$before" ] && [ "$(q "$A" "SELECT count(*) FROM checkpoints WHERE role = 'policy'")" = 1 ] &&
    ok "cli-rsr-03 rerunning a finished round changes nothing" || fail "cli-rsr-03 rerun of round 1 changed the run"
"$BIN" rs round "$A" --round 2 "${ROUND[@]}" >"$TMP/r2.out" 2>&1 || fail "cli-rsr-03 round 2: $(tail -5 "$TMP/r2.out")"
pol1=$(q "$A" "SELECT min(id) FROM checkpoints WHERE role = 'policy'")
by=$(q "$A" "SELECT DISTINCT checkpoint_id FROM samples WHERE round = 2")
n_sel2=$(q "$A" "SELECT count(*) FROM selections WHERE round = 2")
from1=$(q "$A" "SELECT count(*) FROM selections se JOIN samples s ON s.id = se.sample_id WHERE se.round = 2 AND s.round = 1")
[ "$by" = "$pol1" ] && [ "$n_sel2" = $P ] &&
    ok "cli-rsr-03 round 2 sampled from round 1's policy; $n_sel2 selections pooled over both rounds ($from1 from round 1)" ||
    fail "cli-rsr-03 round 2 sampled by '$by' (want $pol1), $n_sel2 selections"

par2=$(q "$A" "SELECT parent_id FROM checkpoints WHERE role = 'policy' ORDER BY id DESC LIMIT 1")
[ "$par2" = "$pol1" ] && ok "cli-rsr-03 round 2 fine-tuned round 1's policy (the model that sampled)" ||
    fail "cli-rsr-03 round 2's policy has parent $par2 (want $pol1)"

finish
