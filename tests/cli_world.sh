#!/usr/bin/env bash
# cli_world.sh: end-to-end checks of `rlhf world build|judge|compare` (the demo world, issue 10).
#
#   cli-world-01  build --size quick: every file written, counts printed; the same seed gives the
#                 same bytes, another seed other facts
#   cli-world-02  the import commands of README.txt load everything (prompts tagged unsafe, pairs
#                 with ratings and safe labels, SFT dialogues with GAtt system prompts)
#   cli-world-03  the GAtt lists load in `rlhf gatt eval --lists` form (gatt generate reads them)
#   cli-world-04  judge: a random tiny model samples the eval prompts in rounds 100 and 101;
#                 two judgments per sample, values in range; a rerun rewrites, no duplicates;
#                 `rlhf export --what judgments` writes them (JSONL, CSV)
#   cli-world-05  compare: wins + losses + ties = pairs of samples, metrics of a world-compare stage
#   cli-world-06  errors: bad --size (2), missing world.json (1, names it), unknown --policy (1)
#
# Environment: RLHF_BIN, RLHF_SRC. Exit 0 passed, 1 failed, 77 skipped.
set -u

. "$(dirname "$0")/lib.sh"
need_cmd sqlite3 "to read the store"
W=$TMP/w

# ---- 01 build ----------------------------------------------------------------------------------------
"$BIN" world build "$W" --size quick --seed 3 >"$TMP/build.txt" 2>&1
rc=$?
ok=0
for f in corpus.txt sft.json prompts_train_safe.json prompts_train_unsafe.json prompts_eval_safe.json \
    prompts_eval_unsafe.json pairs_helpfulness.csv pairs_helpfulness_eval.csv pairs_safety.csv \
    pairs_safety_eval.csv gatt_dialogues.json world.json README.txt gatt/hobbies.txt \
    gatt/languages.txt gatt/figures.txt gatt/styles.txt gatt/fillers.txt gatt/questions.txt; do
    [ -s "$W/$f" ] || { echo "missing $W/$f"; ok=1; }
done
grep -q "^sft.json: [0-9]* demonstrations" "$TMP/build.txt" || ok=1
check cli-world-01a "build writes every file and prints counts" $((rc != 0 || ok))
"$BIN" world build "$TMP/w2" --size quick --seed 3 -q >/dev/null 2>&1
diff -r -x README.txt "$W" "$TMP/w2" >/dev/null
same=$?
"$BIN" world build "$TMP/w3" --size quick --seed 4 -q >/dev/null 2>&1
cmp -s "$W/world.json" "$TMP/w3/world.json"
check cli-world-01b "same seed, same bytes; another seed, another world" $((same != 0 || $? == 0))

# ---- 02 import -------------------------------------------------------------------------------------
R=$TMP/run
grep '^  rlhf init\|^  rlhf import' "$W/README.txt" | sed "s#RUN#$R#" >"$TMP/import.sh"
[ "$(wc -l <"$TMP/import.sh")" -ge 10 ] || echo "README.txt lists too few import commands"
PATH_BIN=$(dirname "$BIN")
(export PATH="$PATH_BIN:$PATH"; sed 's/^  rlhf /rlhf /; s/$/ -q/' "$TMP/import.sh" | bash -e) >"$TMP/import.txt" 2>&1
rc=$?
n_unsafe=$(q "$R" "SELECT count(*) FROM prompts WHERE unsafe = 1")
n_eval=$(q "$R" "SELECT count(*) FROM prompts WHERE split = 'eval'")
n_rated=$(q "$R" "SELECT count(DISTINCT rating) FROM pairs WHERE rating IS NOT NULL")
n_pairs_bad=$(q "$R" "SELECT count(*) FROM pairs WHERE rating IS NULL OR chosen_safe IS NULL")
n_gatt=$(q "$R" "SELECT count(*) FROM dialogues WHERE system IS NOT NULL")
n_safe_pair=$(q "$R" "SELECT count(*) FROM pairs WHERE track = 'safety' AND chosen_safe = 1 AND rejected_safe = 0")
[ "$rc" = 0 ] && [ "$n_unsafe" -gt 0 ] && [ "$n_eval" -gt 0 ] && [ "$n_rated" = 4 ] &&
    [ "$n_pairs_bad" = 0 ] && [ "$n_gatt" -gt 0 ] && [ "$n_safe_pair" -gt 0 ]
check cli-world-02 "README.txt's imports load (unsafe $n_unsafe, eval $n_eval, ratings $n_rated, GAtt $n_gatt)" $?
[ "$rc" = 0 ] || cat "$TMP/import.txt"

# ---- 03 GAtt lists and a tokenizer + random model for sampling ----------------------------------------
"$BIN" tokenizer train --corpus "$W/corpus.txt" --vocab 384 --out "$TMP/tok.model" -q >/dev/null 2>&1
V=384 # the trained vocabulary is exactly --vocab (byte fallback pieces included)
"$BIN" model init --out "$TMP/m.bin" --dim 32 --hidden 64 --layers 1 --heads 2 --kv-heads 2 \
    --vocab "$V" --seq 128 -q >/dev/null 2>&1
"$BIN" gatt eval "$R" --policy "$TMP/m.bin" --tokenizer "$TMP/tok.model" --lists "$W/gatt" --n 3 \
    --turns 4 --max-new 4 --threads 1 -q >"$TMP/gatt.txt" 2>&1
check cli-world-03 "gatt eval reads the world's lists" $?

# ---- 04 judge ------------------------------------------------------------------------------------------
for r in 100 101; do
    "$BIN" sample "$R" --policy "$TMP/m.bin" --tokenizer "$TMP/tok.model" --round $r --prompts eval \
        --k 2 --max-new 6 --seed $r --threads 1 -q >/dev/null 2>&1 || echo "sample round $r failed"
done
ns=$(q "$R" "SELECT count(*) FROM samples")
"$BIN" world judge "$R" --world "$W" >"$TMP/judge.txt" 2>&1
rc=$?
nj=$(q "$R" "SELECT count(*) FROM judgments")
nbad=$(q "$R" "SELECT count(*) FROM judgments WHERE value < 0 OR value > 1 OR (judge = 'gold-safety' AND value NOT IN (0, 1))")
nrow=$(grep -c '^10[01] ' "$TMP/judge.txt")
[ "$rc" = 0 ] && [ "$ns" -gt 0 ] && [ "$nj" = $((2 * ns)) ] && [ "$nbad" = 0 ] && [ "$nrow" = 2 ]
check cli-world-04a "judge: $nj judgments for $ns samples, one line per (round, policy)" $?
"$BIN" world judge "$R" --world "$W" --round 100 -q >/dev/null 2>&1
nj2=$(q "$R" "SELECT count(*) FROM judgments")
nm=$(q "$R" "SELECT count(*) FROM metrics m JOIN stages s ON s.id = m.stage_id WHERE s.kind = 'world-judge' AND m.name LIKE 'world/helpful_mean/%'")
[ "$nj2" = "$nj" ] && [ "$nm" -ge 2 ]
check cli-world-04b "a rerun rewrites (no duplicates); metrics stored" $?
"$BIN" export "$R" --what judgments -q >"$TMP/j.jsonl" && [ "$(wc -l <"$TMP/j.jsonl")" = "$nj" ] &&
    grep -q '"judge":"gold-helpfulness"' "$TMP/j.jsonl" &&
    "$BIN" export "$R" --what judgments --format csv -q >"$TMP/j.csv" &&
    [ "$(wc -l <"$TMP/j.csv")" = "$((nj + 1))" ]
check cli-world-04d "export --what judgments: $nj rows in JSONL, and in CSV with a header" $?
# the stored value is the judge's: a hand-written gold answer in a sample row scores 1
pid=$(q "$R" "SELECT id FROM prompts WHERE split = 'eval' AND text LIKE 'What is % plus %?' LIMIT 1")
if [ -n "$pid" ]; then
    ans=$(q "$R" "SELECT text FROM prompts WHERE id = $pid" | sed 's/What is \([0-9]*\) plus \([0-9]*\)?/\1 \2/')
    set -- $ans
    gold="$1 plus $2 is $(($1 + $2))."
    q "$R" "INSERT INTO samples (prompt_id, round, checkpoint_id, idx, seed, temperature, tokens, text, finish)
            VALUES ($pid, 7, (SELECT min(id) FROM checkpoints), 0, 1, 1.0, x'', '$gold', 'eos')"
    "$BIN" world judge "$R" --world "$W" --round 7 -q >/dev/null 2>&1
    v=$(q "$R" "SELECT value FROM judgments j JOIN samples s ON s.id = j.sample_id WHERE s.round = 7 AND j.judge = 'gold-helpfulness'")
    awk -v v="$v" 'BEGIN { exit !(v >= 0.99) }'
    check cli-world-04c "a gold answer stored as a sample is judged $v" $?
fi

# ---- 05 compare ----------------------------------------------------------------------------------------
"$BIN" world compare "$R" --world "$W" --a 100 --b 101 >"$TMP/cmp.txt" 2>&1
rc=$?
w=$(q "$R" "SELECT value FROM metrics WHERE name = 'world/compare/wins'")
l=$(q "$R" "SELECT value FROM metrics WHERE name = 'world/compare/losses'")
t=$(q "$R" "SELECT value FROM metrics WHERE name = 'world/compare/ties'")
n=$(q "$R" "SELECT count(*) FROM samples WHERE round = 100")
[ "$rc" = 0 ] && awk -v w="$w" -v l="$l" -v t="$t" -v n="$n" 'BEGIN { exit !(w + l + t == n) }' &&
    grep -q "win rate" "$TMP/cmp.txt"
check cli-world-05 "compare: wins $w + losses $l + ties $t = $n pairs" $?

# ---- 06 errors ----------------------------------------------------------------------------------------
"$BIN" world build "$TMP/x" --size huge >/dev/null 2>&1
[ $? = 2 ]
check cli-world-06a "bad --size: exit 2" $?
"$BIN" world judge "$R" --world "$TMP/nothing" >"$TMP/e.txt" 2>&1
[ $? = 1 ] && grep -q "nothing/world.json" "$TMP/e.txt"
check cli-world-06b "missing world.json: exit 1 naming it" $?
"$BIN" world judge "$R" --world "$W" --policy /no/such.bin >"$TMP/e.txt" 2>&1
[ $? = 1 ] && grep -q "no such checkpoint" "$TMP/e.txt"
check cli-world-06c "unknown --policy: exit 1" $?
"$BIN" world compare "$R" --world "$W" --a 100 >/dev/null 2>&1
[ $? = 2 ]
check cli-world-06d "compare without --b: exit 2" $?

finish
