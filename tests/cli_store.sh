#!/usr/bin/env bash
# cli_store.sh: end-to-end tests of the run store commands: `rlhf init/status/export/import`.
#   1. init (creates, idempotent, refuses a non-run directory), the schema equals docs/store.md
#   2. bad files with --on-error stop leave the data unchanged (dump compared), the error names
#      file:line; --on-error skip imports the good records and reports the bad ones
#   3. kill -9 in the middle of a large import, rerun: exactly the rows of an uninterrupted run,
#      PRAGMA integrity_check ok; rerunning a finished import does nothing
#   4. every file of ../shared/data imports with the counts of shared/DATA.md; round trip
#      import -> export jsonl -> import into a fresh run -> identical exports
# Needs the sqlite3 shell (skips with 77 without it); part 4 needs ../shared/data (77 at the end
# when absent, after parts 1-3 passed).
set -u
. "$(dirname "$0")/lib.sh"
need_cmd sqlite3 "to read the store"
need_cmd python3 "to generate test files"

# ---- 1. init, status, schema ------------------------------------------------------------------
R=$TMP/run
$BIN init "$R" >/dev/null || fail "init"
[ -f "$R/rlhf.db" ] && [ -d "$R/ckpt" ] && [ -d "$R/logs" ] || fail "init did not create the run layout"
$BIN init "$R" | grep -q "existing run" || fail "init on an existing run is not idempotent"
mkdir "$TMP/other" && echo x >"$TMP/other/notes.txt"
if $BIN init "$TMP/other" 2>"$TMP/err"; then fail "init accepted a non-run directory"; fi
grep -q "not a run directory" "$TMP/err" || fail "init's refusal does not say why: $(cat "$TMP/err")"
[ ! -e "$TMP/other/rlhf.db" ] || fail "init wrote into a non-run directory"
if $BIN status "$TMP/nothere" 2>/dev/null; then fail "status of a missing run succeeded"; fi
[ "$(q "$R" 'PRAGMA user_version')" = 3 ] || fail "user_version"
[ "$(q "$R" 'PRAGMA journal_mode')" = wal ] || fail "journal mode"
sed -n '/<!-- schema begin -->/,/<!-- schema end -->/p' "$SRC/docs/store.md" | sed '1,2d;$d' | sed '$d' >"$TMP/doc_schema.sql"
sqlite3 "$R/rlhf.db" .schema >"$TMP/db_schema.sql"
if [ -s "$TMP/doc_schema.sql" ] && diff "$TMP/doc_schema.sql" "$TMP/db_schema.sql" >"$TMP/schema.diff"; then
  ok "schema equals docs/store.md"
else
  fail "schema differs from docs/store.md:"; head -20 "$TMP/schema.diff"
fi
$BIN status "$R" | grep -q "pairs *0" || fail "status of an empty run"
$BIN export "$R" --what pairs --format csv -q >"$TMP/empty.csv" || fail "export of an empty table"
[ ! -s "$TMP/empty.csv" ] || fail "export of an empty table wrote something"
if $BIN export "$R" --what bogus 2>/dev/null; then fail "export --what bogus accepted"; fi
# a sample text that is not UTF-8 (stored by an older `rlhf sample` from a lone <0xA2> piece of a
# llama2.c tokenizer) exports with U+FFFD in place of the bad byte instead of losing its "text" key
RU=$TMP/run_utf8
$BIN init "$RU" -q
sqlite3 "$RU/rlhf.db" "INSERT INTO stages (kind, started_at) VALUES ('import', 'x');
  INSERT INTO prompts (text, split, source, stage_id, src_index) VALUES ('p', 'train', 's', 1, 0);
  INSERT INTO checkpoints (role, path, sha256, created_at) VALUES ('policy', 'c', printf('%064d', 0), 'x');
  INSERT INTO samples (prompt_id, round, checkpoint_id, seed, temperature, tokens, text, finish)
    VALUES (1, 1, 1, 0, 1, x'00000000', CAST(x'6162A263' AS TEXT), 'eos')"
$BIN export "$RU" --what samples -q >"$TMP/utf8.jsonl" || fail "export of a non-UTF-8 sample text"
python3 -c 'import json, sys; t = json.loads(open(sys.argv[1]).read())["text"]; sys.exit(t != "ab\ufffdc")' \
    "$TMP/utf8.jsonl" && ok "a non-UTF-8 sample text exports with U+FFFD" ||
    fail "non-UTF-8 sample text exported as: $(cat "$TMP/utf8.jsonl")"

# ---- 2. bad input: stop leaves the data unchanged, skip reports --------------------------------
gen_hh() { # gen_hh FILE N [BADLINE]: N HH pairs, line BADLINE (1-based) replaced by broken JSON
  python3 - "$@" <<'EOF'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
bad = int(sys.argv[3]) if len(sys.argv) > 3 else -1
with open(path, "w") as f:
    for i in range(1, n + 1):
        if i == bad:
            f.write('{"chosen": "\\n\\nHuman: broken\n')
            continue
        ctx = "\n\nHuman: question %d?\n\nAssistant: let me think\n\nHuman: and %d?" % (i, i * 7)
        f.write(json.dumps({"chosen": ctx + "\n\nAssistant: good answer %d" % i,
                            "rejected": ctx + "\n\nAssistant: bad answer %d" % i}) + "\n")
EOF
}
dump_data() { sqlite3 "$1/rlhf.db" ".dump prompts pairs dialogues samples scores selections metrics checkpoints"; }
gen_hh "$TMP/good.jsonl" 40
$BIN import "$R" "$TMP/good.jsonl" --track helpfulness -q || fail "import of a good HH file"
dump_data "$R" >"$TMP/before.sql"
gen_hh "$TMP/bad_json.jsonl" 1200 1100
printf '{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: \xff\xfe", "rejected": "\\n\\nHuman: hi\\n\\nAssistant: no"}\n' >"$TMP/bad_utf8.jsonl"
: >"$TMP/empty.jsonl"
printf 'goal,target\n"how do I,x\n' >"$TMP/bad_quote.csv"
printf 'target\nx\n' >"$TMP/no_column.csv"
for f in bad_json.jsonl:1100 bad_utf8.jsonl:1 empty.jsonl: bad_quote.csv:2 no_column.csv:1; do
  file=${f%%:*} line=${f#*:}
  extra=(--track safety)
  if $BIN import "$R" "$TMP/$file" "${extra[@]}" --batch 100 -q 2>"$TMP/err"; then
    fail "$file: a bad file imported with --on-error stop"
  else
    grep -q "$file${line:+:$line}" "$TMP/err" || fail "$file: error does not name ${file}${line:+:$line}: $(cat "$TMP/err")"
  fi
done
# a bad record after several committed batches (the rlhf format is read in one pass)
python3 - "$TMP/native_bad.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(1200):
        f.write(json.dumps({"kind": "prompt", "text": "prompt %d" % i, "split": "train", "source": "gen"}) + "\n")
    f.write('{"kind": "prompt", "split": "train"}\n')
EOF
if $BIN import "$R" "$TMP/native_bad.jsonl" --batch 100 -q 2>"$TMP/err"; then fail "native_bad imported"; fi
grep -q "native_bad.jsonl:1201" "$TMP/err" || fail "native_bad: error does not name line 1201: $(cat "$TMP/err")"
dump_data "$R" >"$TMP/after.sql"
if cmp -s "$TMP/before.sql" "$TMP/after.sql"; then ok "--on-error stop left the data unchanged (6 bad files)"
else fail "--on-error stop changed the data"; diff "$TMP/before.sql" "$TMP/after.sql" | head -5; fi
[ "$(q "$R" "SELECT count(*) FROM stages WHERE status = 'failed' AND error LIKE '%native_bad.jsonl:1201%'")" = 1 ] \
  || fail "the failed stage does not record its error"
# (the empty file fails before its stage starts: its format cannot be detected)
[ "$(q "$R" "SELECT count(*) FROM stages WHERE status = 'failed'")" -ge 4 ] \
  && [ "$(q "$R" "SELECT count(*) FROM stages WHERE status = 'failed' AND progress != 0")" = 0 ] \
  || fail "failed stages should be recorded with progress 0"
$BIN import "$R" "$TMP/bad_json.jsonl" --track safety --on-error skip >"$TMP/out" 2>&1 || fail "skip mode failed: $(cat "$TMP/out")"
grep -q "1199 pairs" "$TMP/out" && grep -q "1 bad" "$TMP/out" && grep -q "skipped .*bad_json.jsonl:1100" "$TMP/out" \
  || fail "skip mode summary: $(cat "$TMP/out")"
[ "$(q "$R" "SELECT json_extract(result, '\$.bad') FROM stages WHERE status = 'done' AND params LIKE '%bad_json%'")" = 1 ] \
  || fail "skip mode: bad count not stored"
[ "$(q "$R" "SELECT value FROM metrics JOIN stages s ON s.id = stage_id WHERE name = 'import/bad' AND s.params LIKE '%bad_json%'")" = 1.0 ] \
  || fail "skip mode: import/bad metric"

# ---- 3. kill -9 mid-way, rerun -> the rows of an uninterrupted run -------------------------------
N=8000
gen_hh "$TMP/big.jsonl" $N
K=$TMP/killed U=$TMP/uninterrupted
$BIN init -q "$K" && $BIN init -q "$U"
$BIN import "$U" "$TMP/big.jsonl" --track helpfulness --split-eval 0.1 --batch 200 -q || fail "uninterrupted import"
$BIN import "$K" "$TMP/big.jsonl" --track helpfulness --split-eval 0.1 --batch 200 -q &
pid=$!
p=0
for _ in $(seq 1 400); do # until a few batches are committed (stop mode validates the file first)
  p=$(q "$K" "SELECT coalesce(max(progress), 0) FROM stages" 2>/dev/null || echo 0)
  [ "${p:-0}" -ge 1000 ] && break
  sleep 0.02
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
st=$(q "$K" "SELECT status || ' ' || progress FROM stages")
case "$st" in
  "running "*) p=${st#running }
    if [ "$p" -gt 0 ] && [ "$p" -lt $N ]; then ok "killed mid-way: $p of $N records committed"
    else fail "the kill was not mid-way (progress $p of $N)"; fi ;;
  *) fail "the kill did not land mid-import (stage: $st)" ;;
esac
[ "$(q "$K" 'SELECT count(*) FROM pairs')" = "$p" ] || fail "rows committed != progress after the kill"
$BIN import "$K" "$TMP/big.jsonl" --track helpfulness --split-eval 0.1 --batch 200 >"$TMP/out" || fail "rerun after the kill"
grep -q "resuming stage" "$TMP/out" || fail "the rerun did not resume: $(cat "$TMP/out")"
$BIN export "$K" --what pairs -q >"$TMP/k.jsonl" && $BIN export "$U" --what pairs -q >"$TMP/u.jsonl"
if cmp -s "$TMP/k.jsonl" "$TMP/u.jsonl" && [ "$(wc -l <"$TMP/k.jsonl")" -eq $N ]; then
  ok "after kill -9 and rerun: the $N rows of the uninterrupted run"
else fail "killed+resumed rows differ from the uninterrupted run ($(wc -l <"$TMP/k.jsonl") vs $(wc -l <"$TMP/u.jsonl"))"; fi
[ "$(q "$K" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after the kill"
ev=$(q "$K" "SELECT count(*) FROM pairs WHERE split = 'eval'")
[ "$ev" -gt $((N / 20)) ] && [ "$ev" -lt $((N * 3 / 20)) ] || fail "split-eval 0.1 gave $ev eval rows of $N"
$BIN import "$K" "$TMP/big.jsonl" --track helpfulness --split-eval 0.1 --batch 200 | grep -q "nothing to do" \
  || fail "rerunning a finished import is not a no-op"
[ "$(q "$K" 'SELECT count(*) FROM pairs')" = $N ] || fail "rerun of a finished import changed the rows"

# ---- 4. the shared data files, round trip -------------------------------------------------------
D=$SHARED/data
need_files "$D" # after parts 1-3: exits 1 when one failed
S=$TMP/shared
$BIN init -q "$S"
$BIN import "$S" "$D/hh-rlhf/harmless-base_test.jsonl.gz" --track safety --split-eval 0.05 -q || fail "import harmless-base"
$BIN import "$S" "$D"/hh-rlhf/helpful-*.jsonl.gz --track helpfulness --split-eval 0.05 -q || fail "import helpful-*"
$BIN import "$S" "$D"/safety-prompts/* --unsafe -q || fail "import safety prompts"
$BIN import "$S" "$D"/dialogues/* "$D"/personas/* -q || fail "import dialogues, personas"
stat_of() { q "$S" "SELECT json_extract(result, '\$.$2') FROM stages WHERE status = 'done' AND json_extract(params, '\$.file') LIKE '%/$1'"; }
while read -r file n; do
  rec=$(stat_of "$file" records) good=$(stat_of "$file" good)
  rs=$(stat_of "$file" rejected_same) rc=$(stat_of "$file" rejected_context)
  rows=$(q "$S" "SELECT (SELECT count(*) FROM pairs WHERE source = '$file') + (SELECT count(*) FROM prompts WHERE source = '$file') + (SELECT count(*) FROM dialogues WHERE source = '$file')")
  if [ "$rec" = "$n" ] && [ "$rows" = "$good" ] && [ $((good + rs + rc)) -eq "$n" ]; then
    ok "$file: $n records, $rows rows, rejected $rs identical + $rc differing contexts"
  else fail "$file: records $rec (DATA.md: $n), rows $rows, good $good, rejected $rs + $rc"; fi
done <<'EOF'
harmless-base_test.jsonl.gz 2312
helpful-base_test.jsonl.gz 2354
helpful-online_test.jsonl.gz 1137
helpful-rejection-sampled_test.jsonl.gz 2749
advbench_harmful_behaviors.csv 520
redinstruct_harmfulqa.json 1960
redinstruct_catqa_english.json 550
redinstruct_dangerousqa.json 200
redinstruct_adversarialqa.json 500
nemo_sft_512_llama3_format.jsonl 512
fastchat_dummy_conversation.json 500
mt_bench_question.jsonl 80
awesome_chatgpt_prompts.csv 304
EOF
[ "$(stat_of helpful-rejection-sampled_test.jsonl.gz rejected_same)" = 32 ] || fail "rejection-sampled: 32 identical pairs expected"
[ "$(q "$S" "SELECT count(*) FROM dialogues WHERE source LIKE 'nemo%' AND json_array_length(turns) = 6")" = 316 ] \
  || fail "nemo: 316 dialogues with 6 turns expected"
[ "$(q "$S" "SELECT count(*) FROM prompts WHERE source LIKE 'mt_bench%' AND json_array_length(turns) = 2")" = 80 ] \
  || fail "mt-bench: 80 two-turn prompts expected"
[ "$(q "$S" "SELECT count(*) FROM prompts WHERE unsafe = 1")" = 3730 ] || fail "--unsafe: 3730 unsafe prompts expected"
[ "$(q "$S" "SELECT count(*) FROM pairs WHERE track = 'safety'")" = 2312 ] || fail "safety track pairs"
$BIN status "$S" >"$TMP/status" || fail "status"
grep -q "pairs *8514" "$TMP/status" || fail "status: 8514 pairs expected: $(grep pairs "$TMP/status")"
# round trip
S2=$TMP/shared2
$BIN init -q "$S2"
for w in pairs prompts dialogues; do
  $BIN export "$S" --what $w --out "$TMP/$w.1.jsonl" -q || fail "export $w"
  $BIN export "$S" --what $w --format csv --out "$TMP/$w.csv" -q || fail "export $w csv"
done
$BIN import "$S2" "$TMP/pairs.1.jsonl" "$TMP/prompts.1.jsonl" "$TMP/dialogues.1.jsonl" -q || fail "import of the exports"
same=1
for w in pairs prompts dialogues; do
  $BIN export "$S2" --what $w --out "$TMP/$w.2.jsonl" -q
  cmp -s "$TMP/$w.1.jsonl" "$TMP/$w.2.jsonl" || { fail "round trip of $w differs"; same=0; }
done
[ $same = 1 ] && ok "round trip import -> export -> import: identical pairs, prompts, dialogues"
python3 - "$TMP/pairs.csv" <<'EOF' || fail "the CSV export does not parse back to 8514 rows"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert len(rows) == 8514, len(rows)
assert rows[0]["kind"] == "pair" and rows[0]["track"] == "safety"
EOF
[ "$(q "$S" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"

finish
