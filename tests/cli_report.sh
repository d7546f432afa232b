#!/usr/bin/env bash
# cli_report.sh: `rlhf report` end to end on a small run built with the real commands
# (aidreams260K as the base, its 512-token tokenizer; setup as in cli_rs_round.sh / cli_ppo.sh).
#
#   cli-rep-01  an empty run: the page is written (RUN/report/index.html), parses, and every data
#               section (rm, best-of-k, selections, ppo, gold, gatt, training) says "not run"
#   cli-rep-02  a run with sft, two reward models, rm eval, an RS round (+ rs report), PPO and
#               gatt eval: every section has data, the HTML parses (html.parser, balanced tags), each
#               inline SVG parses as XML, no script or external reference
#   cli-rep-03  the numbers are the store's: RM accuracy cells equal the rm-eval metrics, selection
#               counts per round equal the selections table, table counts equal count(*), the
#               PPO and GAtt charts have one point per stored iteration / turn
#   cli-rep-05  gold judges: with a judgments table (schema v3 of the world branch, created here by
#               hand when the program does not make it) and a world-compare stage, the gold section
#               shows per-policy means equal to SQL avg() and the win rate chart
#   cli-rep-04  --out FILE; a second report of the same run is byte-identical; a missing run and
#               an unwritable --out are errors (exit 1) naming the path
#
# Environment: RLHF_BIN, RLHF_SHARED, RLHF_SRC. Exit 0 passed, 1 failed, 77 skipped.
set -u

. "$(dirname "$0")/lib.sh"
TOK=$SHARED/models/aidreams260K_tok512.bin
MODEL=$SHARED/models/aidreams260K.bin
need_files "$TOK" "$MODEL"
need_cmd sqlite3 "to read the store"
need_cmd python3 "to check the page"
at_exit() { [ -n "${KEEP:-}" ] && cp -r "$TMP/a" "$KEEP"; } # KEEP=DIR keeps the run

# check.py RUN HTML MODE: parses the page and compares it with the store (MODE empty | full)
cat >"$TMP/check.py" <<'EOF'
import html.parser, re, sqlite3, sys, xml.dom.minidom
run, page, mode = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(page, encoding="utf-8").read()
VOID = {"meta", "br", "img", "hr", "input", "link", "col"}
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.sections, self.cur = [], {}, None
        self.bad = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "iframe", "object") or any(k in ("src",) for k in a):
            self.bad.append(tag)
        if tag == "link" or (tag == "a" and not a.get("href", "#").startswith("#")):
            self.bad.append(tag)
        if tag == "section":
            self.cur = a["id"]; self.sections[self.cur] = ""
        if tag not in VOID:
            self.stack.append(tag)
    def handle_startendtag(self, tag, attrs):
        pass
    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, ("unbalanced", tag, self.stack[-6:])
        self.stack.pop()
        if tag == "section":
            self.cur = None
    def handle_data(self, d):
        if self.cur:
            self.sections[self.cur] += d
p = P()
p.feed(text)
p.close()
assert not p.stack, ("unclosed", p.stack)
assert not p.bad, ("external or script content", p.bad)
svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)
for s in svgs:
    xml.dom.minidom.parseString(s)
data = ["rm", "best-of-k", "selections", "ppo", "gold", "gatt", "training"]
assert set(["summary"] + data) <= set(p.sections), sorted(p.sections)
db = sqlite3.connect(run + "/rlhf.db")
# table counts
for t, n in re.findall(r'<td data-table="(\w+)">(\d+)</td>', text):
    assert int(n) == db.execute("SELECT count(*) FROM " + t).fetchone()[0], t
if mode == "empty":
    for s in data:
        assert "not run" in p.sections[s], (s, p.sections[s][:200])
    assert len(svgs) == 0, len(svgs)
    print("empty: %d sections say not run" % len(data))
    sys.exit(0)
expect_not_run = {"gold"}  # no judgments table in this run
for s in data:
    if s in expect_not_run:
        assert "not run" in p.sections[s], s
    elif s != "training":  # training lists pretrain (not run here) beside sft and rm-train
        assert "not run" not in p.sections[s], (s, p.sections[s][:300])
assert any("sft: loss per step" in s for s in svgs) and any("rm-train: loss per step" in s for s in svgs)
# RM accuracy cells = metrics
cells = re.findall(r'data-stage="(\d+)" data-metric="(rm-eval/accuracy/\w+)">([0-9.]+)<', text)
assert cells, "no accuracy cells"
for st, name, v in cells:
    (m,) = db.execute("SELECT value FROM metrics WHERE stage_id = ? AND name = ?", (int(st), name)).fetchone()
    assert abs(float(v) - m) < 5e-5, (st, name, v, m)
n_eval = db.execute("SELECT count(*) FROM stages WHERE kind = 'rm-eval'").fetchone()[0]
assert len(set(c[0] for c in cells)) == n_eval, (cells, n_eval)
# selections per round
for r, n in re.findall(r'<td data-round="(\d+)">(\d+)</td>', text):
    assert int(n) == db.execute("SELECT count(*) FROM selections WHERE round = ?", (int(r),)).fetchone()[0]
assert re.search(r'<td data-round="1">', text)
# one polyline point per PPO iteration (3 series) and per GAtt turn
ppo = [s for s in svgs if "PPO stage" in s]
assert len(ppo) == db.execute("SELECT count(*) FROM stages WHERE kind = 'ppo'").fetchone()[0]
n_it = db.execute("SELECT count(*) FROM metrics WHERE name = 'ppo/kl_ref'").fetchone()[0]
pts = sum(len(pl.split()) for pl in re.findall(r'points="([^"]*)"', ppo[0]))
assert pts == 3 * n_it, (pts, n_it)
g = [s for s in svgs if "Instruction recall" in s][0]
n_t = db.execute("SELECT count(*) FROM metrics WHERE name = 'gatt/recall/all'").fetchone()[0]
assert sum(len(pl.split()) for pl in re.findall(r'points="([^"]*)"', g)) == n_t
print("full: %d SVGs parse, %d accuracy cells, %d PPO iterations, %d GAtt turns" % (len(svgs), len(cells), n_it, n_t))
EOF

# ---- cli-rep-01: an empty run --------------------------------------------------------------------------
E=$TMP/empty
"$BIN" init "$E" -q || { fail "init"; exit 1; }
if "$BIN" report "$E" >"$TMP/e.out" 2>&1 && [ -s "$E/report/index.html" ] &&
    out=$(python3 "$TMP/check.py" "$E" "$E/report/index.html" empty 2>&1); then
    ok "cli-rep-01 empty run: $out"
else fail "cli-rep-01 empty run: $(cat "$TMP/e.out") ${out:-}"; fi

# ---- a small run -----------------------------------------------------------------------------------------
python3 - "$TMP" <<'EOF'
import json, random, sys
d = sys.argv[1]
random.seed(5)
words = "the sea sky cat dog tree sun moon light water stone road".split()
def text(n): return " ".join(random.choice(words) for _ in range(n))
dia = [{"id": str(i), "conversations": [{"from": "human", "value": "Tell me about the %s." % w},
                                         {"from": "gpt", "value": "The %s is %s." % (w, text(5))}]}
       for i, w in enumerate(words)]
json.dump(dia, open(d + "/dialogues.json", "w"))
rat = ["significantly", "better", "slightly", "negligibly", "unsure"]
for name, n, good in (("help", 30, "the sun is light"), ("safe", 16, "sorry I cannot")):
    with open("%s/%s.csv" % (d, name), "w") as f:
        f.write("prompt,chosen,rejected,rating\n")
        for i in range(n):
            f.write('"%s?","%s %s","%s",%s\n' % (text(4), good, text(2), text(5), rat[i % 5]))
json.dump(["Tell me about the sea.", "What is a tree?", "Say something kind.", "Name an animal."],
          open(d + "/prompts.json", "w"))
EOF
A=$TMP/a
{ "$BIN" init "$A" -q && "$BIN" import "$A" "$TMP/dialogues.json" -q &&
  "$BIN" import "$A" "$TMP/prompts.json" --format prompt-list -q &&
  "$BIN" import "$A" "$TMP/help.csv" --format csv-pairs --track helpfulness --split-eval 0.4 -q &&
  "$BIN" import "$A" "$TMP/safe.csv" --format csv-pairs --track safety --split-eval 0.4 -q; } >"$TMP/setup.out" 2>&1 ||
    { fail "run setup: $(tail -3 "$TMP/setup.out")"; exit 1; }
{ "$BIN" sft "$A" --init "$MODEL" --tokenizer "$TOK" --epochs 1 --batch 2 --lr 1e-3 --threads 1 -q &&
  for t in helpfulness safety; do
      "$BIN" rm train "$A" --track $t --init "$MODEL" --tokenizer "$TOK" --batch 4 --epochs 1 \
          --lr 1e-3 --threads 1 --name rm-$t -q || exit 1
      "$BIN" rm eval "$A" --model "$A/ckpt/rm-$t/hf" --tokenizer "$TOK" --track $t --threads 1 -q || exit 1
  done &&
  "$BIN" rs round "$A" --round 1 --tokenizer "$TOK" --rm-helpfulness "$A/ckpt/rm-helpfulness/hf" \
      --rm-safety "$A/ckpt/rm-safety/hf" --k 3 --max-new 8 --epochs 1 --batch 2 --threads 1 -q &&
  "$BIN" ppo "$A" --iterations 2 --policy "$MODEL" --tokenizer "$TOK" \
      --rm-helpfulness "$A/ckpt/rm-helpfulness/hf" --rm-safety "$A/ckpt/rm-safety/hf" --batch 4 \
      --minibatch 4 --micro 2 --max-new 8 --lr 1e-4 --threads 1 -q &&
  mkdir -p "$TMP/L" && printf 'chess\n' >"$TMP/L/hobbies.txt" &&
  printf 'French\tle|la|est\n' >"$TMP/L/languages.txt" && printf 'Zeus\n' >"$TMP/L/figures.txt" &&
  printf 'uppercase\nno_comma\n' >"$TMP/L/styles.txt" &&
  "$BIN" gatt eval "$A" --policy "$MODEL" --tokenizer "$TOK" --turns 4 --n 6 --max-new 4 \
      --lists "$TMP/L" --threads 1 -q; } >"$TMP/run.out" 2>&1 ||
    { fail "building the run: $(tail -5 "$TMP/run.out")"; exit 1; }

# ---- cli-rep-02 / 03 ---------------------------------------------------------------------------------------
if "$BIN" report "$A" >"$TMP/a.out" 2>&1 &&
    out=$(python3 "$TMP/check.py" "$A" "$A/report/index.html" full 2>&1); then
    ok "cli-rep-02/03 $(cat "$TMP/a.out"); $out"
else fail "cli-rep-02/03 $(cat "$TMP/a.out") ${out:-}"; fi

# ---- cli-rep-04 ---------------------------------------------------------------------------------------------
"$BIN" report "$A" --out "$TMP/copy.html" -q && cmp -s "$TMP/copy.html" "$A/report/index.html" &&
    [ ! -e "$TMP/copy.html.tmp" ] && ok "cli-rep-04 --out writes the same page again" ||
    fail "cli-rep-04 --out: a second report differs"
"$BIN" report "$TMP/nope" 2>"$TMP/err1"
rc1=$?
"$BIN" report "$A" --out "$TMP/no/such/dir/r.html" 2>"$TMP/err2"
rc2=$?
[ $rc1 = 1 ] && grep -q "nope" "$TMP/err1" && [ $rc2 = 1 ] && grep -q "no/such/dir" "$TMP/err2" &&
    ok "cli-rep-04 a missing run and an unwritable --out are errors naming the path" ||
    fail "cli-rep-04 errors: rc $rc1 '$(cat "$TMP/err1")', rc $rc2 '$(cat "$TMP/err2")'"

# ---- cli-rep-05 ---------------------------------------------------------------------------------------------
G=$TMP/g
cp -r "$A" "$G"
sqlite3 "$G/rlhf.db" >"$TMP/g.sql.out" 2>&1 <<'EOF'
CREATE TABLE IF NOT EXISTS judgments (id INTEGER PRIMARY KEY, sample_id INTEGER NOT NULL REFERENCES samples (id),
  judge TEXT NOT NULL, value REAL NOT NULL, stage_id INTEGER REFERENCES stages (id), UNIQUE (sample_id, judge));
INSERT INTO stages (kind, key, params, status, started_at, ended_at)
  VALUES ('world-compare', 'test', '{}', 'done', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:02.500Z');
INSERT INTO judgments (sample_id, judge, value, stage_id)
  SELECT id, 'gold-helpfulness', (id % 4) / 4.0, (SELECT max(id) FROM stages) FROM samples;
INSERT INTO judgments (sample_id, judge, value, stage_id)
  SELECT id, 'gold-safety', (id % 3 != 0), (SELECT max(id) FROM stages) FROM samples;
INSERT INTO metrics (stage_id, step, name, value) VALUES
  ((SELECT max(id) FROM stages), 0, 'world-compare/win_rate', 0.8125),
  ((SELECT max(id) FROM stages), 0, 'world-compare/win_rate_ci_lo', 0.6),
  ((SELECT max(id) FROM stages), 0, 'world-compare/win_rate_ci_hi', 0.9),
  ((SELECT max(id) FROM stages), 0, 'world-compare/wins', 13);
EOF
if "$BIN" report "$G" -q 2>"$TMP/g.err" && python3 - "$G" <<'EOF'
import re, sqlite3, sys
run = sys.argv[1]
t = open(run + "/report/index.html").read()
sec = re.search(r'<section id="gold">(.*?)</section>', t, re.S).group(1)
assert "not run" not in sec, sec[:300]
assert "Win rate" in sec and ">0.8125<" in sec and "world-compare/wins" in sec, sec[-800:]
db = sqlite3.connect(run + "/rlhf.db")
rows = db.execute("SELECT sa.round, avg(j.value), sum(j.value < 0.5) FROM judgments j JOIN samples sa "
                  "ON sa.id = j.sample_id WHERE j.judge = 'gold-safety' GROUP BY sa.round, sa.checkpoint_id").fetchall()
help_ = db.execute("SELECT avg(j.value) FROM judgments j JOIN samples sa ON sa.id = j.sample_id "
                   "WHERE j.judge = 'gold-helpfulness' GROUP BY sa.round, sa.checkpoint_id").fetchall()
assert rows and len(rows) == len(help_), (rows, help_)
for (r, v, viol), (h,) in zip(rows, help_):
    row = re.search(r"<tr><td>%d</td><td>[^<]*</td><td>([0-9.]+)</td><td>\d+</td><td>([0-9.]+)</td><td>\d+</td><td>(\d+)</td>" % r, sec)
    assert row, (r, sec[-1500:])
    assert abs(float(row.group(1)) - h) < 5e-5 and abs(float(row.group(2)) - v) < 5e-5 and int(row.group(3)) == viol, (row.groups(), h, v, viol)
EOF
then ok "cli-rep-05 gold section from a judgments table and a world-compare stage"
else fail "cli-rep-05 gold section: $(cat "$TMP/g.err" "$TMP/g.sql.out")"; fi

finish
