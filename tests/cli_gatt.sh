#!/usr/bin/env bash
# cli_gatt.sh: end-to-end checks of `rlhf gatt generate` with the shared aidreams260K model and
# its tokenizer on a few ShareGPT dialogues (short lists, so that several turns fit in 128 tokens).
#
#   cli-gatt-01  generate N dialogues: one row each, loss mask 1 on the last (assistant) turn only,
#                the instruction in the first user turn only (--place first-turn); a rerun is done
#   cli-gatt-02  --place system: the instruction is the system prompt, no user turn carries it
#   cli-gatt-03  --batch 2 stopped after one group, then resumed: rows identical to cli-gatt-01's
#   cli-gatt-04  `rlhf sft` trains on the stored dialogues, learning only the last answers
#   cli-gatt-05  errors: missing source (1, names it), bad list file (1, file:line), bad --place (2)
#   cli-gatt-06  gatt eval: recall table printed, metrics by turn stored, SVG plot; deterministic
#   cli-gatt-07  generate --rm (best of K by a reward model); an LM as --rm is refused
#   cli-gatt-08  generate --require-pass: each stored dialogue is the unfiltered one cut after its
#                last answer that passes the checker (no comma under a no-comma rule; a French
#                marker word under a French rule); the others are dropped and counted
#
# Environment: RLHF_BIN, RLHF_SHARED, RLHF_SRC. Exit 0 passed, 1 failed, 77 skipped.
set -u

. "$(dirname "$0")/lib.sh"
TOK=$SHARED/models/aidreams260K_tok512.bin
MODEL=$SHARED/models/aidreams260K.bin
need_files "$TOK" "$MODEL"
need_cmd sqlite3 "to read the store"

cat >"$TMP/d.json" <<'EOF'
[
{"id": "a", "conversations": [{"from": "human", "value": "What is the sea?"}, {"from": "gpt", "value": "The sea is salt water."}]},
{"id": "b", "conversations": [{"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello."}, {"from": "human", "value": "Again."}, {"from": "gpt", "value": "Hello again."}, {"from": "human", "value": "Once more."}, {"from": "gpt", "value": "Hello."}]},
{"id": "c", "conversations": [{"from": "human", "value": "Name a color."}, {"from": "gpt", "value": "Blue."}, {"from": "human", "value": "Another one."}, {"from": "gpt", "value": "Red."}]},
{"id": "d", "conversations": [{"from": "human", "value": "Count to three."}, {"from": "gpt", "value": "One, two, three."}]},
{"id": "e", "conversations": [{"from": "human", "value": "What do cats like?"}, {"from": "gpt", "value": "Sleep."}]},
{"id": "f", "conversations": [{"from": "human", "value": "Hi."}, {"from": "gpt", "value": "Hi."}, {"from": "human", "value": "Bye."}, {"from": "gpt", "value": "Bye."}]}
]
EOF
mkdir -p "$TMP/L"
printf 'chess\n' >"$TMP/L/hobbies.txt"
printf 'French\tle|la|est\n' >"$TMP/L/languages.txt"
printf 'Zeus\n' >"$TMP/L/figures.txt"
printf 'uppercase\nno_comma\n' >"$TMP/L/styles.txt"

GEN=(--dialogues "$TMP/d.json" --policy "$MODEL" --tokenizer "$TOK" --n 5 -k 2 --max-new 6
     --lists "$TMP/L" --threads 1 -q)
A=$TMP/a
B=$TMP/b
C=$TMP/c
"$BIN" init "$A" -q && "$BIN" init "$B" -q && "$BIN" init "$C" -q
check cli-gatt-00 "three runs set up" $?

# ---- 01: rows, masks, instruction in the first turn only
"$BIN" gatt generate "$A" "${GEN[@]}" --place first-turn
check cli-gatt-01 "generate exits 0" $?
[ "$(q "$A" "select count(*) from dialogues where source = 'gatt'")" = 5 ]
check cli-gatt-01 "5 dialogues stored" $?
# mask: one byte per turn, only the last one set, on an assistant turn
[ "$(q "$A" "select count(*) from dialogues where length(loss_mask) = json_array_length(turns)
      and hex(loss_mask) = substr('000000000000000000000000', 1, 2 * length(loss_mask) - 2) || '01'
      and json_extract(turns, '\$[#-1].role') = 'assistant'")" = 5 ]
check cli-gatt-01 "mask on the last assistant turn only" $?
[ "$(q "$A" "select max(json_array_length(turns)) from dialogues")" -ge 4 ]
check cli-gatt-01 "multi-turn dialogues kept (longest has $(q "$A" "select max(json_array_length(turns)) from dialogues") turns)" $?
# the instruction ("...\n\n" + the user's text) in the first user turn only; system prompt none
first=$(q "$A" "select count(*) from dialogues where instr(json_extract(turns, '\$[0].text'), char(10,10)) > 0 and system is null")
later=$(q "$A" "select count(*) from dialogues, json_each(dialogues.turns) where json_each.key > 0
                and json_extract(json_each.value, '\$.role') = 'user'
                and instr(json_extract(json_each.value, '\$.text'), char(10)) > 0")
[ "$first" = 5 ] && [ "$later" = 0 ]
check cli-gatt-01 "instruction in the first turn of all 5 ($first), in no later turn ($later)" $?
"$BIN" gatt generate "$A" "${GEN[@]::${#GEN[@]}-1}" --place first-turn | grep -q "nothing to do"
check cli-gatt-01 "rerun says nothing to do" $?
[ "$(q "$A" "select count(*) from dialogues")" = 5 ]
check cli-gatt-01 "still 5 dialogues" $?

# ---- 02: --place system
"$BIN" gatt generate "$C" "${GEN[@]}" --place system &&
    [ "$(q "$C" "select count(*) from dialogues where system like '%.'")" = 5 ] &&
    [ "$(q "$C" "select count(*) from dialogues, json_each(dialogues.turns)
                 where instr(json_extract(json_each.value, '\$.text'), char(10)) > 0")" = 0 ]
check cli-gatt-02 "instruction as the system prompt only" $?

# ---- 03: resume with another batch size gives the same rows
"$BIN" gatt generate "$B" "${GEN[@]}" --place first-turn --batch 2 --stop-after 1 >/dev/null &&
    [ "$(q "$B" "select count(*) from dialogues")" = 2 ]
check cli-gatt-03 "stopped after one group of 2" $?
"$BIN" gatt generate "$B" "${GEN[@]}" --place first-turn --batch 2
check cli-gatt-03 "resumed" $?
dump() { q "$1" "select src_index, ifnull(system, ''), turns, hex(loss_mask) from dialogues order by src_index"; }
[ "$(dump "$A")" = "$(dump "$B")" ] && [ -n "$(dump "$A")" ]
check cli-gatt-03 "same rows as the uninterrupted run with another --batch" $?

# ---- 04: sft on the GAtt dialogues
out=$("$BIN" sft "$A" --init "$MODEL" --tokenizer "$TOK" --epochs 1 --batch 2 --seq 128 \
      --threads 1 2>&1)
rc=$?
echo "$out" | sed -n 1p
[ $rc = 0 ] && echo "$out" | grep -q "5 records -> 5 examples"
check cli-gatt-04 "sft trains on the 5 GAtt dialogues" $?

# ---- 05: errors
"$BIN" gatt generate "$A" "${GEN[@]}" --dialogues "$TMP/none.json" 2>"$TMP/e1"
rc=$?
[ $rc = 1 ] && grep -q "none.json" "$TMP/e1"
check cli-gatt-05 "missing source: exit 1 naming it" $?
printf 'uppercase\nshouting\n' >"$TMP/bad_styles.txt"
"$BIN" gatt generate "$A" "${GEN[@]}" --styles "$TMP/bad_styles.txt" 2>"$TMP/e2"
rc=$?
[ $rc = 1 ] && grep -q "bad_styles.txt:2: unknown style rule" "$TMP/e2"
check cli-gatt-05 "bad list: exit 1 with file:line" $?
"$BIN" gatt generate "$A" "${GEN[@]}" --place middle 2>/dev/null
[ $? = 2 ]
check cli-gatt-05 "bad --place: exit 2" $?

# ---- 06: eval (the tiny model's 128-token context holds only the first probe)
out=$("$BIN" gatt eval "$A" --policy "$MODEL" --tokenizer "$TOK" --turns 4 --n 12 --max-new 4 \
      --lists "$TMP/L" --threads 1 -q)
rc=$?
echo "$out" | sed 's/^/     /'
[ $rc = 0 ] && echo "$out" | grep -q "^all " && echo "$out" | grep -q "^turn  *2  *4$"
check cli-gatt-06 "eval prints the recall table" $?
n2=$(q "$A" "select value from metrics m join stages s on s.id = m.stage_id
             where s.kind = 'gatt-eval' and m.name = 'gatt/n/all' and m.step = 2")
r2=$(q "$A" "select count(*) from metrics m join stages s on s.id = m.stage_id
             where s.kind = 'gatt-eval' and m.name = 'gatt/recall/all' and m.step = 2
             and m.value between 0 and 1")
awk -v n="$n2" 'BEGIN { exit !(n > 0 && n <= 12) }' && [ "$r2" = 1 ] &&
    [ -s "$A/report/gatt_recall_ckpt1.svg" ]
check cli-gatt-06 "recall and n stored by turn ($n2 probed at turn 2), plot written" $?
"$BIN" gatt eval "$A" --policy "$MODEL" --tokenizer "$TOK" --turns 4 --n 12 --max-new 4 \
    --lists "$TMP/L" --threads 1 -q | grep -v "^plot" >"$TMP/eval2"
[ "$(echo "$out" | grep -v "^plot")" = "$(cat "$TMP/eval2")" ] &&
    [ "$(q "$A" "select count(*) from stages where kind = 'gatt-eval'")" = 1 ]
check cli-gatt-06 "a second eval gives the same table in the same stage" $?

# ---- 07: best of K by a reward model (a tiny one trained here on 8 pairs)
python3 - "$TMP/pairs.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(8):
        ctx = "\n\nHuman: Say something %d?\n\nAssistant: " % i
        f.write(json.dumps({"chosen": ctx + "SURE, HERE IT IS.", "rejected": ctx + "no"}) + "\n")
EOF
R=$TMP/r
"$BIN" init "$R" -q && "$BIN" import "$R" "$TMP/pairs.jsonl" --track helpfulness -q &&
    "$BIN" rm train "$R" --track helpfulness --init "$MODEL" --tokenizer "$TOK" --batch 4 \
        --epochs 1 --name h --threads 1 -q >/dev/null
check cli-gatt-07 "a tiny reward model trained" $?
"$BIN" gatt generate "$R" "${GEN[@]}" --rm "$R/ckpt/h/hf" &&
    [ "$(q "$R" "select count(*) from dialogues where source = 'gatt'")" = 5 ] &&
    [ "$(q "$R" "select json_extract(params, '\$.rm') = c.id from stages s, checkpoints c
                 where s.kind = 'gatt-generate' and c.path = '$R/ckpt/h/hf/model.safetensors'")" = 1 ]
check cli-gatt-07 "generate --rm: 5 dialogues, the reward model in the stage's params" $?
"$BIN" gatt generate "$R" "${GEN[@]}" --rm "$MODEL" 2>"$TMP/e3"
[ $? = 1 ] && grep -q "LM head" "$TMP/e3" &&
    [ "$(q "$R" "select count(*) from checkpoints where role = 'reward-helpfulness'")" = 1 ]
check cli-gatt-07 "an LM as --rm: exit 1, nothing registered" $?

# ---- 08: --require-pass (only no_comma as a style: a random model's answers pass it sometimes)
mkdir -p "$TMP/L2"
cp "$TMP/L/hobbies.txt" "$TMP/L/languages.txt" "$TMP/L/figures.txt" "$TMP/L2/"
printf 'no_comma\n' >"$TMP/L2/styles.txt"
G8=(--dialogues "$TMP/d.json" --policy "$MODEL" --tokenizer "$TOK" --n 6 -k 2 --max-new 8
    --lists "$TMP/L2" --place system --threads 1 -q)
P=$TMP/p
F=$TMP/f
"$BIN" init "$P" -q && "$BIN" init "$F" -q &&
    "$BIN" gatt generate "$P" "${G8[@]}" && "$BIN" gatt generate "$F" "${G8[@]}" --require-pass
check cli-gatt-08 "generate with and without --require-pass" $?
python3 - "$P/rlhf.db" "$F/rlhf.db" <<'EOF'
import json, re, sqlite3, sys
def rows(db):
    c = sqlite3.connect(db)
    return {i: (s or "", json.loads(t)) for i, s, t in
            c.execute("select src_index, system, turns from dialogues where source = 'gatt'")}
plain, kept = rows(sys.argv[1]), rows(sys.argv[2])
def passes(system, answer):
    if "comma" in system and "," in answer:
        return False
    if "French" in system and not re.search(r"\b(le|la|est)\b", answer.lower()):
        return False
    return True
bad = []
for i, (system, turns) in kept.items():
    if i not in plain or plain[i][0] != system or plain[i][1][:len(turns)] != turns:
        bad.append("%d is not a prefix of the unfiltered dialogue" % i)
    if not passes(system, turns[-1]["text"]):
        bad.append("%d: learned answer %r fails %r" % (i, turns[-1]["text"], system))
for i, (system, turns) in plain.items():  # dropped ones: no answer passes
    if i not in kept and any(passes(system, t["text"]) for t in turns if t["role"] == "assistant"):
        bad.append("%d dropped although an answer passes" % i)
c = sqlite3.connect(sys.argv[2])
res = json.loads(c.execute("select result from stages where kind = 'gatt-generate'").fetchone()[0])
if res["dropped_this_process"] != len(plain) - len(kept):
    bad.append("dropped %s, expected %d" % (res["dropped_this_process"], len(plain) - len(kept)))
print("     %d of %d dialogues kept, %d cut" % (len(kept), len(plain), res["cut_this_process"]))
if bad:
    print("\n".join(bad))
    sys.exit(1)
EOF
check cli-gatt-08 "--require-pass keeps prefixes ending in a passing answer, drops the rest" $?

finish
