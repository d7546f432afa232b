#!/usr/bin/env bash
# cli_ppo.sh: `rlhf ppo` end to end on a tiny run (aidreams260K as policy and reference, its
# 512-token tokenizer, a few prompts, two small reward models trained here in seconds).
#
#   cli-ppo-01  3 iterations: metrics per iteration in the store (KL to the reference exactly 0 in
#               the first, where policy == reference), a policy checkpoint per iteration, stage done,
#               the reward/KL curve and its SVG plot
#   cli-ppo-02  the same run stopped after iteration 1 (--stop-after), iteration 1 redone (its
#               `latest` removed) and resumed: the final weights equal the uninterrupted run's
#   cli-ppo-03  the same run killed with kill -9 at several moments and rerun until it finishes:
#               the same final weights; integrity_check ok
#   cli-ppo-04  bad input: a reward model given as the policy is a clear error (exit 1)
#   cli-ppo-05  --value-init from an LM checkpoint (a new scalar head), --kl k3, --entropy no
#   cli-ppo-06  rollouts in the store: batch x iterations rows, no duplicate (stage, iteration, idx)
#               after kill -9 and resume and the same rows as the uninterrupted run, iteration 1
#               sampled by the start policy with KL 0, the gate and the rewards consistent; they
#               are not samples: `rs select` finds no candidates, `export --what samples` is
#               empty, `export --what rollouts` writes them all
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

python3 - "$TMP" <<'EOF'
import json, random, sys
d = sys.argv[1]
random.seed(5)
words = "the sea sky cat dog tree sun moon light water stone road".split()
def text(n): return " ".join(random.choice(words) for _ in range(n))
for name, n, good in (("help", 16, "the sun is light"), ("safe", 12, "sorry I cannot")):
    with open("%s/%s.jsonl" % (d, name), "w") as f:
        for i in range(n):
            ctx = "\n\nHuman: %s?" % text(4)
            f.write(json.dumps({"chosen": ctx + "\n\nAssistant: " + good + " " + text(2),
                                "rejected": ctx + "\n\nAssistant: " + text(5)}) + "\n")
json.dump(["Tell me about the sea.", "What is a tree?", "Say something kind.",
           "Why is the sky blue?", "Name an animal.", "Where is the moon?"],
          open(d + "/prompts.json", "w"))
EOF
A=$TMP/a
{ "$BIN" init "$A" -q && "$BIN" import "$A" "$TMP/prompts.json" --format prompt-list -q &&
  "$BIN" import "$A" "$TMP/help.jsonl" --track helpfulness -q &&
  "$BIN" import "$A" "$TMP/safe.jsonl" --track safety -q; } || { fail "run setup"; exit 1; }
for t in helpfulness safety; do
    "$BIN" rm train "$A" --track $t --init "$MODEL" --tokenizer "$TOK" --batch 4 --epochs 1 \
        --lr 1e-3 --threads 1 --name rm-$t >"$TMP/rm-$t.out" 2>&1 ||
        { fail "rm train $t: $(tail -3 "$TMP/rm-$t.out")"; exit 1; }
done
B=$TMP/b
C=$TMP/c
cp -r "$A" "$B"
cp -r "$A" "$C"

PPO=(--policy "$MODEL" --tokenizer "$TOK" --rm-helpfulness "$A/ckpt/rm-helpfulness/hf"
     --rm-safety "$A/ckpt/rm-safety/hf" --batch 8 --minibatch 4 --micro 2 --max-new 12
     --lr 1e-4 --threads 1)
N=3
last_weights() { # RUN -> path of the newest policy checkpoint's safetensors
    echo "$(q "$1" "SELECT path FROM checkpoints WHERE role = 'policy' ORDER BY step DESC, id DESC LIMIT 1")/model.safetensors"
}

# ---- cli-ppo-01 -------------------------------------------------------------------------------------
if "$BIN" ppo "$A" --iterations $N "${PPO[@]}" -v >"$TMP/a.out" 2>&1; then
    ok "cli-ppo-01 ppo finished $N iterations"
else fail "cli-ppo-01 ppo: $(tail -5 "$TMP/a.out")"; fi
grep "iteration" "$TMP/a.out" | sed 's/^/  /'
stage=$(q "$A" "SELECT id FROM stages WHERE kind = 'ppo'")
n_it=$(q "$A" "SELECT count(DISTINCT step) FROM metrics WHERE stage_id = '$stage' AND name = 'ppo/reward_gated'")
kl1=$(q "$A" "SELECT value FROM metrics WHERE stage_id = '$stage' AND step = 1 AND name = 'ppo/kl_ref'")
kl3=$(q "$A" "SELECT value FROM metrics WHERE stage_id = '$stage' AND step = 3 AND name = 'ppo/kl_ref'")
n_pol=$(q "$A" "SELECT count(*) FROM checkpoints WHERE role = 'policy' AND stage_id = '$stage'")
status=$(q "$A" "SELECT status || ' ' || progress FROM stages WHERE kind = 'ppo'")
[ "$n_it" = $N ] && [ "$n_pol" = $N ] && [ "$status" = "done $N" ] &&
    ok "cli-ppo-01 metrics for $n_it iterations, $n_pol policy checkpoints, stage $status" ||
    fail "cli-ppo-01 iterations with metrics $n_it, policy checkpoints $n_pol, stage '$status'"
[ "$kl1" = 0.0 ] && [ -n "$kl3" ] && [ "$kl3" != 0.0 ] &&
    ok "cli-ppo-01 KL to the reference: exactly 0 in iteration 1 (policy == reference), $kl3 in iteration 3" ||
    fail "cli-ppo-01 KL in iteration 1 '$kl1' (want 0.0), iteration 3 '$kl3' (want != 0)"
ls "$A"/ckpt/ppo-*/*.state >/dev/null 2>&1 && n_state=$(ls "$A"/ckpt/ppo-*/*.state | wc -l) || n_state=0
[ "$n_state" = 2 ] && ok "cli-ppo-01 one policy and one value state kept" || fail "cli-ppo-01 $n_state state files"
svg=$(ls "$A"/ckpt/ppo-*/reward_kl.svg 2>/dev/null)
[ -n "$svg" ] && [ "$(wc -l <"$(dirname "$svg")/curve.tsv")" = $N ] && grep -q "KL to reference" "$svg" &&
    ok "cli-ppo-01 reward/KL curve ($N points) and its SVG plot" || fail "cli-ppo-01 no curve or plot"
WA=$(last_weights "$A")

# ---- cli-ppo-02: stop after 1, resume ------------------------------------------------------------------
"$BIN" ppo "$B" --iterations $N "${PPO[@]}" --stop-after 1 >"$TMP/b1.out" 2>&1 || fail "cli-ppo-02 stop-after: $(tail -3 "$TMP/b1.out")"
# as if killed after iteration 1's store commit but before its `latest`: iteration 1 is redone,
# its metrics and rollouts written a second time
rm -f "$B"/ckpt/ppo-*/latest
"$BIN" ppo "$B" --iterations $N "${PPO[@]}" --stop-after 1 >"$TMP/b1.out" 2>&1 || fail "cli-ppo-02 redo: $(tail -3 "$TMP/b1.out")"
"$BIN" ppo "$B" --iterations $N "${PPO[@]}" >"$TMP/b2.out" 2>&1 || fail "cli-ppo-02 resume: $(tail -3 "$TMP/b2.out")"
grep -q resuming "$TMP/b2.out" || fail "cli-ppo-02 the second run did not resume"
cmp -s "$WA" "$(last_weights "$B")" && ok "cli-ppo-02 stopped after 1 and resumed: same weights as the uninterrupted run" ||
    fail "cli-ppo-02 weights differ after resume"

# ---- cli-ppo-03: kill -9 at several moments ------------------------------------------------------------
kills=0 seen=""
for i in $(seq 1 60); do
    "$BIN" ppo "$C" --iterations $N "${PPO[@]}" >"$TMP/c.out" 2>&1 &
    BGPID=$!
    sleep "$(awk -v i=$i 'BEGIN { print 0.15 + 0.05 * i }')"
    if kill -9 $BGPID 2>/dev/null; then
        kills=$((kills + 1))
        seen="$seen $(cat "$C"/ckpt/ppo-*/latest 2>/dev/null || echo 0)"
    fi
    wait $BGPID 2>/dev/null
    BGPID=
    [ "$(q "$C" "SELECT count(*) FROM stages WHERE kind = 'ppo' AND status = 'done'")" = 1 ] && break
done
echo "  killed $kills times; iterations saved at each kill:$seen"
"$BIN" ppo "$C" --iterations $N "${PPO[@]}" >"$TMP/c.out" 2>&1 || fail "cli-ppo-03 final rerun: $(tail -3 "$TMP/c.out")"
cmp -s "$WA" "$(last_weights "$C")" && [ "$(q "$C" "SELECT count(*) FROM checkpoints WHERE role = 'policy' AND stage_id IS NOT NULL AND step > 0")" = $N ] &&
    ok "cli-ppo-03 killed $kills times and rerun: same weights as the uninterrupted run, $N checkpoints" ||
    fail "cli-ppo-03 after $kills kills: weights or checkpoints differ"
mets() { q "$1" "SELECT m.step, m.name, printf('%.9g', m.value) FROM metrics m JOIN stages s ON s.id = m.stage_id WHERE s.kind = 'ppo' AND m.name NOT LIKE 'ppo/t\_%' ESCAPE '\\' ORDER BY 1, 2"; }
mets "$A" >"$TMP/a.mets"
mets "$C" >"$TMP/c.mets"
cmp -s "$A"/ckpt/ppo-*/curve.tsv "$C"/ckpt/ppo-*/curve.tsv && cmp -s "$TMP/a.mets" "$TMP/c.mets" &&
    [ "$(wc -l <"$TMP/a.mets")" -ge $((N * 15)) ] &&
    ok "cli-ppo-03 the same metrics ($(wc -l <"$TMP/a.mets") values) and reward/KL curve" ||
    fail "cli-ppo-03 metrics or curves differ"
[ "$(q "$C" 'PRAGMA integrity_check')" = ok ] || fail "cli-ppo-03 integrity_check"

# ---- cli-ppo-04: bad input ---------------------------------------------------------------------------------
"$BIN" ppo "$A" --iterations 1 "${PPO[@]}" --policy "$A/ckpt/rm-helpfulness/hf" >"$TMP/d.out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "not a policy" "$TMP/d.out" && ok "cli-ppo-04 a reward model as the policy: exit 1, clear error" ||
    fail "cli-ppo-04 exit $rc: $(tail -2 "$TMP/d.out")"

# ---- cli-ppo-05: value model from an LM (new scalar head), k3, no entropy -------------------------------
"$BIN" ppo "$A" --iterations 1 "${PPO[@]}" --value-init "$MODEL" --kl k3 --entropy no --batch 4 \
    >"$TMP/e.out" 2>&1 || fail "cli-ppo-05 ppo: $(tail -3 "$TMP/e.out")"
st5=$(q "$A" "SELECT id FROM stages WHERE kind = 'ppo' ORDER BY id DESC LIMIT 1")
n5=$(q "$A" "SELECT count(*) FROM metrics WHERE stage_id = $st5 AND name IN ('ppo/kl_ref', 'ppo/value_loss')")
e5=$(q "$A" "SELECT count(*) FROM metrics WHERE stage_id = $st5 AND name = 'ppo/entropy'")
[ "$st5" != "$stage" ] && [ "$n5" = 2 ] && [ "$e5" = 0 ] &&
    ok "cli-ppo-05 value model from an LM checkpoint, k3 KL, entropy off: a new stage with its metrics" ||
    fail "cli-ppo-05 stage $st5 (first $stage), metrics $n5, entropy rows $e5"

# ---- cli-ppo-06: rollouts ---------------------------------------------------------------------------------
BATCH=8
rows() { q "$1" "SELECT r.iteration, r.idx, r.prompt_id, hex(r.tokens), r.finish, r.gate, printf('%.6g %.6g %.6g %.6g %.6g %.6g', r.reward_help, r.reward_safe, r.reward_gated, r.reward_final, r.kl, r.advantage_mean) FROM rollouts r JOIN stages s ON s.id = r.stage_id WHERE s.id = (SELECT min(id) FROM stages WHERE kind = 'ppo') ORDER BY 1, 2"; }
rows "$A" >"$TMP/a.rows"
rows "$C" >"$TMP/c.rows"
rows "$B" >"$TMP/b.rows"
for R in "$A" "$B" "$C"; do
    st=$(q "$R" "SELECT min(id) FROM stages WHERE kind = 'ppo'")
    n=$(q "$R" "SELECT count(*) FROM rollouts WHERE stage_id = $st")
    d=$(q "$R" "SELECT count(*) FROM (SELECT DISTINCT iteration, idx FROM rollouts WHERE stage_id = $st)")
    per=$(q "$R" "SELECT group_concat(c) FROM (SELECT count(*) c FROM rollouts WHERE stage_id = $st GROUP BY iteration ORDER BY iteration)")
    [ "$n" = $((BATCH * N)) ] && [ "$d" = "$n" ] && [ "$per" = "$BATCH,$BATCH,$BATCH" ] &&
        ok "cli-ppo-06 $(basename "$R"): $n rollouts ($per per iteration), no duplicates" ||
        fail "cli-ppo-06 $(basename "$R"): $n rollouts, $d distinct, per iteration '$per' (want $BATCH x $N)"
done
cmp -s "$TMP/a.rows" "$TMP/c.rows" && cmp -s "$TMP/a.rows" "$TMP/b.rows" &&
    ok "cli-ppo-06 iteration redone / killed and resumed: the same rollouts as the uninterrupted run" ||
    fail "cli-ppo-06 rollouts differ after a redo or kill -9: $(diff "$TMP/a.rows" "$TMP/b.rows" | head -2) $(diff "$TMP/a.rows" "$TMP/c.rows" | head -2)"
chk=$(q "$A" "SELECT
  sum(r.iteration = 1 AND (r.kl != 0 OR r.checkpoint_id != (SELECT json_extract(params, '$.policy') FROM stages WHERE id = r.stage_id))),
  sum(r.iteration > 1 AND r.checkpoint_id != (SELECT c.id FROM checkpoints c WHERE c.stage_id = r.stage_id AND c.role = 'policy' AND c.step = r.iteration - 1)),
  sum(r.reward_gated != CASE r.gate WHEN 'safety' THEN r.reward_safe ELSE r.reward_help END),
  sum(length(r.tokens) = 0 OR length(r.logprobs) != length(r.tokens))
  FROM rollouts r WHERE r.stage_id = $stage")
[ "$chk" = "0|0|0|0" ] && ok "cli-ppo-06 provenance (start policy, then iter-<k-1>), KL 0 in iteration 1, R_c = the gate's score, log-probs per token" ||
    fail "cli-ppo-06 inconsistent rollouts (bad iteration 1 | bad checkpoint | bad gate | bad arrays): $chk"
"$BIN" score "$A" --model "$A/ckpt/rm-helpfulness/hf" --tokenizer "$TOK" --threads 1 >"$TMP/score.out" 2>&1
"$BIN" rs select "$A" --round 0 >"$TMP/rs.out" 2>&1
n_sco=$(q "$A" "SELECT count(*) FROM scores")
n_sel=$(q "$A" "SELECT count(*) FROM selections")
n_smp=$("$BIN" export "$A" --what samples -q | wc -l)
n_exp=$("$BIN" export "$A" --what rollouts -q | grep -c '"kind": *"rollout"')
n_all=$(q "$A" "SELECT count(*) FROM rollouts")
[ "$n_sco" = 0 ] && [ "$n_sel" = 0 ] && [ "$n_smp" = 0 ] && [ "$n_exp" = "$n_all" ] &&
    ok "cli-ppo-06 rollouts are not samples: score scored $n_sco, rs select selected $n_sel, export samples $n_smp rows, export rollouts $n_exp of $n_all" ||
    fail "cli-ppo-06 scored $n_sco, rs select selected $n_sel (want 0: $(tail -1 "$TMP/rs.out")), export samples $n_smp (want 0), rollouts $n_exp of $n_all"

finish
