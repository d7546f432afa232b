#!/usr/bin/env bash
# cli_rs_sweep.sh: `rlhf rs sweep` (best-of-k curves at several temperatures, Llama 2's Figure 8)
# on a tiny run (aidreams260K as the base, its 512-token tokenizer, five prompts, two small reward
# models trained here).
#
#   cli-rss-01  a sweep at 2 temperatures with K=3 writes temperatures x K x 2 metrics of one
#               rs-sweep stage and an SVG in RUN/report, and adds nothing to samples or scores
#   cli-rss-02  a rerun gives the same metrics (same stage, identical values)
#   cli-rss-03  at the temperature of a stored round (same policy, K, max-new, seed), the sweep's
#               max and median curves equal `rs report`'s for that round
#   cli-rss-04  usage errors (bad or duplicate temperatures, none given) exit 2
#   cli-rss-05  --max-prompts 2 is a stage of its own over the first two prompts; T=0 (greedy)
#               gives max = median; `rlhf --help` lists the command
#
# Environment: RLHF_BIN, RLHF_SHARED, RLHF_SRC. Exit 0 passed, 1 failed, 77 skipped.
set -u

. "$(dirname "$0")/lib.sh"
TOK=$SHARED/models/aidreams260K_tok512.bin
MODEL=$SHARED/models/aidreams260K.bin
need_files "$TOK" "$MODEL"
need_cmd sqlite3 "to read the store"
need_cmd python3 "to generate test files"

# ---- a run: dialogues for SFT, preference pairs for the reward models, prompts --------------------
python3 - "$TMP" <<'PY'
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
PY
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
POL=$(q "$A" "SELECT path FROM checkpoints WHERE role = 'sft' ORDER BY id DESC LIMIT 1")
RMH=$A/ckpt/rm-helpfulness/hf RMS=$A/ckpt/rm-safety/hf
# round 1 stored the ordinary way at T = 1, for cli-rss-03
{ "$BIN" sample "$A" --policy "$POL" --tokenizer "$TOK" --round 1 --k 3 --max-new 12 \
      --temperature 1.0 --threads 1 -q &&
  "$BIN" score "$A" --model "$RMH" --tokenizer "$TOK" --role helpfulness --threads 1 -q &&
  "$BIN" score "$A" --model "$RMS" --tokenizer "$TOK" --role safety --threads 1 -q &&
  "$BIN" rs report "$A" --round 1 --threads 1 -q; } >"$TMP/round.out" 2>&1 ||
    { fail "round 1 sample/score/report: $(tail -3 "$TMP/round.out")"; exit 1; }

SWEEP=(--policy "$POL" --tokenizer "$TOK" --rm-helpfulness "$RMH" --rm-safety "$RMS" --k 3
       --max-new 12 --threads 1)
K=3 NT=2
n_samples=$(q "$A" "SELECT count(*) FROM samples") n_scores=$(q "$A" "SELECT count(*) FROM scores")
sum_samples=$(q "$A" "SELECT group_concat(id || ':' || length(tokens) || ':' || text, '|') FROM samples")

# ---- cli-rss-01 ---------------------------------------------------------------------------------------
"$BIN" rs sweep "$A" "${SWEEP[@]}" --temperatures 0.7,1.0 >"$TMP/s1.out" 2>&1 ||
    fail "cli-rss-01 rs sweep: $(tail -5 "$TMP/s1.out")"
cat "$TMP/s1.out"
stage=$(q "$A" "SELECT id FROM stages WHERE kind = 'rs-sweep' AND status = 'done'")
n_m=$(q "$A" "SELECT count(*) FROM metrics WHERE stage_id = '$stage'")
n_names=$(q "$A" "SELECT count(DISTINCT name) FROM metrics WHERE stage_id = '$stage' AND name IN ('rs/sweep/T0.7/best_of_k_max', 'rs/sweep/T0.7/best_of_k_median', 'rs/sweep/T1/best_of_k_max', 'rs/sweep/T1/best_of_k_median')")
[ -n "$stage" ] && [ "$n_m" = $((NT * K * 2)) ] && [ "$n_names" = 4 ] &&
    ok "cli-rss-01 stage $stage: $n_m metrics (temperatures x K x 2), names rs/sweep/T<t>/best_of_k_{max,median}" ||
    fail "cli-rss-01 stage '$stage': $n_m metrics (want $((NT * K * 2))), $n_names of the 4 names"
[ "$(q "$A" "SELECT count(*) FROM samples")" = "$n_samples" ] &&
    [ "$(q "$A" "SELECT count(*) FROM scores")" = "$n_scores" ] &&
    [ "$(q "$A" "SELECT group_concat(id || ':' || length(tokens) || ':' || text, '|') FROM samples")" = "$sum_samples" ] &&
    ok "cli-rss-01 samples and scores tables unchanged ($n_samples samples, $n_scores scores)" ||
    fail "cli-rss-01 the sweep changed the samples or scores table"
svg=$(ls "$A"/report/rs_sweep_*.svg 2>/dev/null | head -1)
[ -n "$svg" ] && grep -q "T=0.7" "$svg" && grep -q "T=1" "$svg" && [ "$(grep -c '<polyline' "$svg")" = $NT ] &&
    ok "cli-rss-01 plot $(basename "$svg") with one curve per temperature" ||
    fail "cli-rss-01 no SVG with $NT curves in $A/report"

# ---- cli-rss-02 ---------------------------------------------------------------------------------------
dump() { q "$A" "SELECT name, step, printf('%.17g', value) FROM metrics WHERE stage_id = '$stage' ORDER BY 1, 2"; }
dump >"$TMP/m1"
"$BIN" rs sweep "$A" "${SWEEP[@]}" --temperatures 0.7,1.0 -q >"$TMP/s2.out" 2>&1 ||
    fail "cli-rss-02 rerun: $(tail -5 "$TMP/s2.out")"
dump >"$TMP/m2"
[ -s "$TMP/m1" ] && cmp -s "$TMP/m1" "$TMP/m2" && [ "$(q "$A" "SELECT count(*) FROM stages WHERE kind = 'rs-sweep'")" = 1 ] &&
    ok "cli-rss-02 rerun: same stage, identical metrics" || fail "cli-rss-02 rerun changed the metrics or added a stage"

# ---- cli-rss-03 ---------------------------------------------------------------------------------------
cmp_curve() {
    q "$A" "SELECT count(*) FROM metrics a JOIN stages sa ON sa.id = a.stage_id AND sa.kind = 'rs-report'
            JOIN metrics b ON b.stage_id = '$stage' AND b.step = a.step AND b.name = 'rs/sweep/T1/best_of_k_$1'
            WHERE a.name = 'rs/best_of_k_$1' AND abs(a.value - b.value) <= 1e-5"
}
[ "$(cmp_curve max)" = $K ] && [ "$(cmp_curve median)" = $K ] &&
    ok "cli-rss-03 the T=1 curves equal rs report's for round 1 (sampled at T=1)" ||
    fail "cli-rss-03 T=1 curves vs rs report: $(cmp_curve max)/$K max, $(cmp_curve median)/$K median equal"

# ---- cli-rss-04 ---------------------------------------------------------------------------------------
bad=0
for t in "0.8,,1.0" "abc" "-1" "0.8,0.8" "0.5,1x" "" "1,2,3,4,5,6,7,8,9"; do
    "$BIN" rs sweep "$A" "${SWEEP[@]}" --temperatures "$t" >"$TMP/u.out" 2>&1
    rc=$?
    [ $rc = 2 ] || { bad=1; echo "  --temperatures '$t': exit $rc (want 2)"; }
done
"$BIN" rs sweep "$A" "${SWEEP[@]}" >"$TMP/u.out" 2>&1
rc=$?
[ $rc = 2 ] || { bad=1; echo "  no --temperatures: exit $rc (want 2)"; }
[ $bad = 0 ] && ok "cli-rss-04 bad temperature lists and a missing list exit 2" || fail "cli-rss-04 usage errors"

# ---- cli-rss-05 ---------------------------------------------------------------------------------------
"$BIN" rs sweep "$A" "${SWEEP[@]}" --temperatures 0,1 --max-prompts 2 -q >"$TMP/s5.out" 2>&1 ||
    fail "cli-rss-05 rs sweep --max-prompts 2: $(tail -5 "$TMP/s5.out")"
st5=$(q "$A" "SELECT id FROM stages WHERE kind = 'rs-sweep' AND status = 'done' ORDER BY id DESC LIMIT 1")
np5=$(q "$A" "SELECT json_extract(result, '$.prompts') FROM stages WHERE id = '$st5'")
g5=$(q "$A" "SELECT count(*) FROM metrics a JOIN metrics b ON b.stage_id = a.stage_id AND b.step = a.step
             AND b.name = 'rs/sweep/T0/best_of_k_median' WHERE a.stage_id = '$st5'
             AND a.name = 'rs/sweep/T0/best_of_k_max' AND abs(a.value - b.value) <= 1e-6")
[ "$st5" != "$stage" ] && [ "$np5" = 2 ] && [ "$g5" = $K ] &&
    [ "$(q "$A" "SELECT count(*) FROM metrics WHERE stage_id = '$st5'")" = $((2 * K * 2)) ] &&
    ok "cli-rss-05 --max-prompts 2: stage $st5 over 2 prompts; greedy max = median" ||
    fail "cli-rss-05 stage $st5 (first $stage), prompts '$np5', greedy max = median at $g5 of $K steps"
"$BIN" --help 2>&1 | grep -q "rs sweep" && ok "cli-rss-05 rlhf --help lists rs sweep" ||
    fail "cli-rss-05 rs sweep missing from rlhf --help"

finish
