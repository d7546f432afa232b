#!/usr/bin/env bash
# cli_rm.sh: end-to-end tests of `rlhf rm train`, `rlhf rm eval` and `rlhf score` on a tiny run.
#   rm-01 rm train on generated HH pairs: a reward model in RUN/ckpt/NAME/hf with score.weight,
#         registered (role reward-helpfulness / reward-safety), stage done, metrics stored
#   rm-02 exact resume: --stop-after 3 then the same command gives the same weights (sha256) as
#         an uninterrupted run; a rerun of a finished run does nothing; changed options refused
#   rm-03 rm eval: text table and --json (pairs counted, accuracy in its CI), --pairs FILE;
#         the results stored as an rm-eval stage whose metrics equal the JSON, a rerun writing
#         the same rows (no second stage)
#   rm-04 score: 1,000 samples inserted into the store, scored by both models; kill -9 during
#         scoring, rerun: the rerun scores exactly the samples not yet scored (each once)
#   rm-05 errors: an LM checkpoint given as --model, a missing run, no pairs of the track
# Needs python3 and the sqlite3 shell (exit 77 without them). Uses the tokenizer fixture
# tests/fixtures/spm_small_nobf.model (600 pieces) and a random base model from `model init`.
set -u
. "$(dirname "$0")/lib.sh"
need_cmd sqlite3 "to read the store"
need_cmd python3 "to generate test files"
TOK=$SRC/tests/fixtures/spm_small_nobf.model
R=$TMP/run

# ---- a tiny base model and a run with helpfulness and safety pairs -------------------------------
$BIN model init --dim 32 --hidden 64 --layers 2 --heads 4 --kv-heads 2 --vocab 600 --seq 96 \
  --out "$TMP/base.bin" >/dev/null || { echo "FAIL: model init"; exit 1; }
python3 - "$TMP/help.jsonl" "$TMP/safe.jsonl" <<'EOF'
import json, random, sys
random.seed(5)
words = "the a cat dog house tree river city light stone water fire road book door".split()
def text(n): return " ".join(random.choice(words) for _ in range(n))
for path, n, good in ((sys.argv[1], 48, "thank you, here is a clear answer"),
                      (sys.argv[2], 24, "sorry, I cannot help with that")):
    with open(path, "w") as f:
        for i in range(n):
            ctx = "\n\nHuman: %s?" % text(6)
            bad = text(8)
            f.write(json.dumps({"chosen": ctx + "\n\nAssistant: " + good + " " + text(3),
                                "rejected": ctx + "\n\nAssistant: " + bad}) + "\n")
EOF
$BIN init "$R" >/dev/null
$BIN import "$R" "$TMP/help.jsonl" --track helpfulness --split-eval 0.25 >/dev/null || fail "import help"
$BIN import "$R" "$TMP/safe.jsonl" --track safety --split-eval 0.25 >/dev/null || fail "import safe"
n_eval=$(q "$R" "select count(*) from pairs where track='helpfulness' and split='eval'")

# ---- rm-01 train ----------------------------------------------------------------------------------
TRAIN=(--track helpfulness --init "$TMP/base.bin" --tokenizer "$TOK" --batch 4 --micro-batch 2
       --lr 3e-3 --epochs 3 --mix 0.2 --ckpt-every 2 --threads 1)
$BIN rm train "$R" "${TRAIN[@]}" --name a >"$TMP/a.out" 2>&1 || { fail "rm train"; cat "$TMP/a.out"; }
grep -q "done:" "$TMP/a.out" || fail "rm train did not say done: $(tail -3 "$TMP/a.out")"
[ -f "$R/ckpt/a/hf/model.safetensors" ] && [ -f "$R/ckpt/a/hf/config.json" ] || fail "no HF dir"
python3 - "$R/ckpt/a/hf/model.safetensors" <<'EOF' || fail "score.weight missing or lm_head present"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
assert h["score.weight"]["shape"] == [1, 32], h["score.weight"]
assert "lm_head.weight" not in h
EOF
[ "$(q "$R" "select role from checkpoints where path='$R/ckpt/a/hf/model.safetensors'")" = reward-helpfulness ] \
  || fail "checkpoint not registered as reward-helpfulness: $(q "$R" 'select role, path from checkpoints')"
[ "$(q "$R" "select status from stages where kind='rm-train' and key='a'")" = done ] || fail "stage not done"
steps=$(q "$R" "select progress from stages where kind='rm-train' and key='a'")
[ "$(q "$R" "select count(*) from metrics m join stages s on s.id=m.stage_id where s.key='a' and m.name='loss'")" = "$steps" ] \
  || fail "loss metrics: not one per step ($steps steps)"
grep -q "of the other track (mix 0.2" "$TMP/a.out" || fail "mixing not reported"
ok "rm train: HF reward model registered, $steps steps, metrics stored"

# ---- rm-02 exact resume ----------------------------------------------------------------------------
$BIN rm train "$R" "${TRAIN[@]}" --name b --stop-after 3 >"$TMP/b1.out" 2>&1 || fail "stop-after run"
grep -q "stopped at step 3" "$TMP/b1.out" || fail "--stop-after 3 not reported: $(tail -2 "$TMP/b1.out")"
[ ! -e "$R/ckpt/b/hf" ] || fail "a stopped run wrote its final model"
$BIN rm train "$R" "${TRAIN[@]}" --name b >"$TMP/b2.out" 2>&1 || fail "resumed run"
grep -q "resuming at step 3" "$TMP/b2.out" || fail "did not resume at step 3: $(head -8 "$TMP/b2.out")"
if cmp -s "$R/ckpt/a/hf/model.safetensors" "$R/ckpt/b/hf/model.safetensors"; then
  ok "stop + resume gives bit-identical weights"
else
  fail "resumed run differs from the uninterrupted one"
fi
$BIN rm train "$R" "${TRAIN[@]}" --name b >"$TMP/b3.out" 2>&1 || fail "rerun of a finished run"
grep -q "already complete" "$TMP/b3.out" || fail "rerun of a finished run: $(cat "$TMP/b3.out")"
if $BIN rm train "$R" "${TRAIN[@]}" --name b --lr 1e-3 2>"$TMP/err" >/dev/null; then
  fail "changed options accepted on a finished run"
fi
grep -q "differ from the run" "$TMP/err" || fail "changed options: no reason given: $(cat "$TMP/err")"
# kill -9 in the middle, rerun: still the same weights
$BIN rm train "$R" "${TRAIN[@]}" --name c >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do [ -f "$R/ckpt/c/state.bin" ] && break; sleep 0.02; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
$BIN rm train "$R" "${TRAIN[@]}" --name c >"$TMP/c.out" 2>&1 || fail "rerun after kill -9"
cmp -s "$R/ckpt/a/hf/model.safetensors" "$R/ckpt/c/hf/model.safetensors" \
  || fail "kill -9 + rerun differs from the uninterrupted run"
ok "kill -9 + rerun: identical weights ($(grep -c resuming "$TMP/c.out") resume)"

# safety model (aux term on by default; HH has no labels so it is 0)
$BIN rm train "$R" --track safety --init "$TMP/base.bin" --tokenizer "$TOK" --batch 4 --micro-batch 2 \
  --lr 3e-3 --epochs 2 --threads 1 --name s >"$TMP/s.out" 2>&1 || { fail "safety rm train"; cat "$TMP/s.out"; }
[ "$(q "$R" "select role from checkpoints where path='$R/ckpt/s/hf/model.safetensors'")" = reward-safety ] \
  || fail "safety checkpoint role"

# ---- rm-03 eval -------------------------------------------------------------------------------------
$BIN rm eval "$R" --model "$R/ckpt/a/hf" --tokenizer "$TOK" --track helpfulness >"$TMP/e.txt" 2>&1 \
  || { fail "rm eval"; cat "$TMP/e.txt"; }
grep -q "| no rating | $n_eval |" "$TMP/e.txt" || fail "eval table: $(cat "$TMP/e.txt")"
grep -q "95% CI" "$TMP/e.txt" && grep -q "margin r_chosen - r_rejected" "$TMP/e.txt" || fail "eval text"
$BIN rm eval "$R" --model "$R/ckpt/a/hf" --tokenizer "$TOK" --track helpfulness --json >"$TMP/e.json" \
  || fail "rm eval --json"
python3 - "$TMP/e.json" "$n_eval" <<'EOF' || fail "eval JSON"
import json, sys
j = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert j["pairs"] == n, (j["pairs"], n)
lo, hi = j["ci95"]
assert 0 <= lo <= j["accuracy"] <= hi <= 1, j
assert j["by_rating"]["none"]["pairs"] == n and j["by_rating"]["better"]["pairs"] == 0
s = j["scores"]
assert s["min"] <= s["p10"] <= s["p50"] <= s["p90"] <= s["max"]
# the rule (chosen starts with a fixed polite phrase) is easy: the trained model finds it
assert j["accuracy"] >= 0.75, j["accuracy"]
EOF
$BIN rm eval "$R" --model "$R/ckpt/a/hf" --tokenizer "$TOK" --pairs "$TMP/help.jsonl" --json >"$TMP/f.json" \
  || fail "rm eval --pairs"
python3 -c "import json,sys; assert json.load(open('$TMP/f.json'))['pairs'] == 48" || fail "--pairs count"
# stored: one rm-eval stage per (model, data, track); the metrics are the JSON's numbers
st=$(python3 -c "import json; print(json.load(open('$TMP/e.json'))['stage'])")
[ "$(q "$R" "select kind || ' ' || status from stages where id = $st")" = "rm-eval done" ] || fail "rm-eval stage"
python3 - "$TMP/e.json" "$R/rlhf.db" "$st" <<'EOF' || fail "rm-eval metrics differ from the JSON"
import json, sqlite3, sys
j = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
m = dict(db.execute("select name, value from metrics where stage_id = ?", (int(sys.argv[3]),)))
assert abs(m["rm-eval/accuracy/all"] - j["accuracy"]) < 1e-12, (m, j)
assert m["rm-eval/n/all"] == j["pairs"] and m["rm-eval/n/none"] == j["pairs"], m
assert abs(m["rm-eval/ci_lo/all"] - j["ci95"][0]) < 1e-12 and abs(m["rm-eval/ci_hi/all"] - j["ci95"][1]) < 1e-12
for s in ("significantly", "better", "slightly", "negligibly", "unsure"):
    assert m["rm-eval/n/" + s] == 0 and "rm-eval/accuracy/" + s not in m, s
EOF
before=$(q "$R" "select count(*) || ' ' || sum(value) from metrics m join stages s on s.id = m.stage_id where s.kind = 'rm-eval'")
nst=$(q "$R" "select count(*) from stages where kind = 'rm-eval'")
$BIN rm eval "$R" --model "$R/ckpt/a/hf" --tokenizer "$TOK" --track helpfulness -q >/dev/null || fail "rm eval rerun"
[ "$(q "$R" "select count(*) || ' ' || sum(value) from metrics m join stages s on s.id = m.stage_id where s.kind = 'rm-eval'")" = "$before" ] &&
  [ "$(q "$R" "select count(*) from stages where kind = 'rm-eval'")" = "$nst" ] && [ "$nst" = 2 ] ||
  fail "rm eval rerun changed the rows ($nst stages)"
ok "rm eval: table, JSON, --pairs ($(python3 -c "import json; print(json.load(open('$TMP/e.json'))['accuracy'])") held-out accuracy)"

# ---- rm-04 score 1,000 samples, kill -9, rerun ------------------------------------------------------
sqlite3 "$R/rlhf.db" <<'EOF'
INSERT INTO checkpoints (role, path, sha256, step, created_at)
  VALUES ('policy', 'fake-policy.bin', printf('%064d', 0), 0, '2026-01-01');
WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 9)
INSERT INTO prompts (text, split, source, stage_id, src_index)
  SELECT 'question number ' || i || ' about the river and the stone', 'train', 'test', 1, 1000 + i FROM k;
WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 999)
INSERT INTO samples (prompt_id, round, checkpoint_id, idx, seed, temperature, tokens, text, finish)
  SELECT (SELECT min(id) FROM prompts) + i % 10, 0,
         (SELECT id FROM checkpoints WHERE role = 'policy'), i, i, 1.0, zeroblob(4),
         'answer ' || i || ' the cat and the dog went down the road to the house by the tree ' ||
         'near the light of the fire and the water of the river and the city',
         'eos' FROM k;
EOF
[ "$(q "$R" 'select count(*) from samples')" = 1000 ] || fail "1000 samples not inserted"
SCORE=(--model "$R/ckpt/a/hf" "$R/ckpt/s/hf" --tokenizer "$TOK" --batch 2 --threads 1)
$BIN score "$R" "${SCORE[@]}" >"$TMP/k.out" 2>&1 &
pid=$!
for _ in $(seq 500); do
  n=$(q "$R" "select count(*) from scores" 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 40 ] && break
  sleep 0.01
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
k=$(q "$R" "select count(*) from scores")
if [ "$k" -ge 2000 ]; then
  fail "scoring finished before kill -9 could interrupt it (make the workload larger)"
fi
$BIN score "$R" "${SCORE[@]}" >"$TMP/k2.out" 2>&1 || { fail "score rerun"; cat "$TMP/k2.out"; }
new=$(sed -n 's/.*scored \([0-9]*\) new samples.*/\1/p' "$TMP/k2.out" | awk '{s += $1} END {print s}')
[ "$new" = $((2000 - k)) ] || fail "rerun scored $new samples; $((2000 - k)) were left after kill -9 ($k done)"
[ "$(q "$R" 'select count(*) from scores')" = 2000 ] || fail "scores: $(q "$R" 'select count(*) from scores') rows, want 2000"
[ "$(q "$R" 'select count(*) from (select sample_id, checkpoint_id from scores group by 1, 2)')" = 2000 ] \
  || fail "duplicate scores"
[ "$(q "$R" 'select count(distinct checkpoint_id) from scores')" = 2 ] || fail "scores of two models"
[ "$(q "$R" 'PRAGMA integrity_check')" = ok ] || fail "integrity"
$BIN score "$R" "${SCORE[@]}" >"$TMP/k3.out" 2>&1 || fail "third score run"
[ "$(grep -c 'scored 0 new samples' "$TMP/k3.out")" = 2 ] || fail "a third run rescored: $(cat "$TMP/k3.out")"
grep -q "sigmoid mean" "$TMP/k2.out" || fail "score summary lacks the sigmoid"
ok "score: killed after $k of 2000 scores, rerun scored the remaining $new, a third run none"

# ---- rm-05 errors -------------------------------------------------------------------------------------
if $BIN rm eval "$R" --model "$TMP/base.bin" --tokenizer "$TOK" 2>"$TMP/err" >/dev/null; then
  fail "an LM checkpoint accepted as a reward model"
fi
grep -q "not a reward model" "$TMP/err" || fail "LM as RM: $(cat "$TMP/err")"
if $BIN rm train "$TMP/nope" --track helpfulness --init "$TMP/base.bin" --tokenizer "$TOK" 2>/dev/null; then
  fail "rm train on a missing run"
fi
$BIN init "$TMP/empty" >/dev/null
if $BIN rm train "$TMP/empty" --track safety --init "$TMP/base.bin" --tokenizer "$TOK" 2>"$TMP/err"; then
  fail "rm train without pairs"
fi
grep -q "no train pairs of track safety" "$TMP/err" || fail "no pairs: $(cat "$TMP/err")"
$BIN rm train "$R" --track bogus --init x --tokenizer y 2>/dev/null; [ $? = 2 ] || fail "bad --track not a usage error"
ok "errors"

finish
