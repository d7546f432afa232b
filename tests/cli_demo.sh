#!/usr/bin/env bash
# cli_demo.sh: `rlhf demo --quick` end to end (the whole recipe on the synthetic world), checking
# that every stage ran and wrote consistent rows, not the quality of the numbers.
#
#   cli-demo-01  usage errors: unknown --from / --until stage, --until before --from (exit 2)
#   cli-demo-02  a run killed with kill -9 in the middle (once the rs stage has started) and
#                started again finishes: exit 0, the summary and the report path printed
#   cli-demo-03  every demo stage is done in `stages`, and no stage of the run failed or is
#                left running
#   cli-demo-04  rejection sampling: samples per round = train prompts x K, each sample scored
#                once by each reward model, one selection per train prompt and round
#   cli-demo-05  eval sampling: rounds 100, 101, 102 (SFT, RS, PPO policies), each eval prompts x K,
#                every eval sample judged by both gold judges; two world-compare stages
#   cli-demo-06  checkpoint lineage: sft <- base, each RS policy <- the previous policy (round 1:
#                SFT), PPO iterations <- the last RS policy, GAtt model <- the PPO policy; every
#                registered path exists
#   cli-demo-07  the report exists and has each section (reward models, rejection sampling, PPO,
#                gold comparison, Ghost Attention)
#   cli-demo-08  a second run says every stage was done earlier, quickly, and changes no row
#   cli-demo-09  the same --out with other options (no --quick) is refused, naming both
#
# Environment: RLHF_BIN, RLHF_SRC. Exit 0 passed, 1 failed, 77 skipped.
set -u

SRC=${RLHF_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${RLHF_BIN:-$SRC/build/rlhf}
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 program not found"; exit 77; }
TMP=$(mktemp -d)
BGPID=
cleanup() {
    [ -n "$BGPID" ] && kill -9 "$BGPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
failures=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
OUT=$TMP/demo
RUN=$OUT/run
q() { sqlite3 "$RUN/rlhf.db" "$1"; }
DEMO=("$BIN" demo --quick --out "$OUT" --threads 2)

# ---- cli-demo-01: usage ---------------------------------------------------------------------------
"$BIN" demo --out "$TMP/u" --from nowhere >/dev/null 2>"$TMP/e1"; r1=$?
"$BIN" demo --out "$TMP/u" --until nowhere >/dev/null 2>"$TMP/e2"; r2=$?
"$BIN" demo --out "$TMP/u" --from ppo --until rs >/dev/null 2>"$TMP/e3"; r3=$?
if [ $r1 = 2 ] && [ $r2 = 2 ] && [ $r3 = 2 ] && grep -q "unknown stage 'nowhere'" "$TMP/e1" &&
    grep -q "before" "$TMP/e3" && [ ! -e "$TMP/u/run" ]; then
    ok "cli-demo-01 usage errors exit 2 and create no run"
else
    fail "cli-demo-01 usage: statuses $r1 $r2 $r3"; cat "$TMP/e1" "$TMP/e3"
fi

# ---- cli-demo-02: killed in the middle, started again ---------------------------------------------
t0=$(date +%s)
"${DEMO[@]}" >"$TMP/first.out" 2>&1 &
BGPID=$!
killed=no
for _ in $(seq 1 1200); do
    if ! kill -0 $BGPID 2>/dev/null; then break; fi
    if [ -f "$RUN/rlhf.db" ] &&
        [ "$(q "SELECT count(*) FROM stages WHERE kind = 'demo' AND key = 'rs'" 2>/dev/null)" = 1 ]; then
        sleep 0.5
        kill -9 $BGPID 2>/dev/null && killed=yes
        break
    fi
    sleep 0.1
done
wait $BGPID 2>/dev/null
BGPID=
"${DEMO[@]}" >"$TMP/second.out" 2>&1; r=$?
t1=$(date +%s)
echo "  first run killed: $killed; both runs: $((t1 - t0)) s"
if [ $r = 0 ] && grep -q "summary" "$TMP/second.out" && grep -q "report: $RUN/report/index.html" "$TMP/second.out"; then
    ok "cli-demo-02 killed (kill -9: $killed) and rerun: exit 0, summary and report printed"
else
    fail "cli-demo-02 demo after kill: exit $r"; tail -30 "$TMP/first.out" "$TMP/second.out"
    for f in "$RUN"/logs/*.log; do echo "== $f"; tail -5 "$f"; done
    exit 1
fi
sed -n '/^summary/,$p' "$TMP/second.out"

# ---- cli-demo-03: stages ----------------------------------------------------------------------------
nd=$(q "SELECT count(DISTINCT key) FROM stages WHERE kind = 'demo' AND key != 'config' AND status = 'done'")
bad=$(q "SELECT count(*) FROM stages WHERE status = 'failed' OR (status = 'running' AND kind != 'demo')")
running_demo=$(q "SELECT count(*) FROM stages s WHERE kind = 'demo' AND status = 'running' AND NOT EXISTS
                  (SELECT 1 FROM stages t WHERE t.kind = 'demo' AND t.key = s.key AND t.status = 'done')")
if [ "$nd" = 12 ] && [ "$bad" = 0 ] && [ "$running_demo" = 0 ]; then
    ok "cli-demo-03 the 12 demo stages are done; no stage failed or left running"
else
    fail "cli-demo-03 demo stages done $nd, failed/running $bad, demo running $running_demo"
    q "SELECT id, kind, key, status FROM stages WHERE status != 'done'"
fi

# ---- cli-demo-04: rejection sampling rows -------------------------------------------------------------
ntrain=$(q "SELECT count(*) FROM prompts WHERE split = 'train'")
rounds=$(q "SELECT group_concat(key, ' ') FROM (SELECT key FROM stages WHERE kind = 'rs-round' AND status = 'done' ORDER BY id)")
msg=""
[ -n "$rounds" ] || msg="no rs-round stage"
for r in $rounds; do
    k=$(q "SELECT json_extract(params, '$.k') FROM stages WHERE kind = 'rs-round' AND key = '$r' AND status = 'done'")
    ns=$(q "SELECT count(*) FROM samples WHERE round = $r")
    [ "$ns" = $((ntrain * k)) ] || msg="$msg; round $r: $ns samples, expected $ntrain x $k"
    unscored=$(q "SELECT count(*) FROM samples s WHERE round = $r AND (SELECT count(DISTINCT c.role) FROM scores x
                  JOIN checkpoints c ON c.id = x.checkpoint_id WHERE x.sample_id = s.id) != 2")
    [ "$unscored" = 0 ] || msg="$msg; round $r: $unscored samples not scored by both RMs"
    dup=$(q "SELECT count(*) FROM (SELECT sample_id, checkpoint_id FROM scores GROUP BY 1, 2 HAVING count(*) > 1)")
    [ "$dup" = 0 ] || msg="$msg; $dup duplicated scores"
    nsel=$(q "SELECT count(*) FROM selections WHERE round = $r")
    [ "$nsel" = "$ntrain" ] || msg="$msg; round $r: $nsel selections for $ntrain prompts"
done
if [ -z "$msg" ] && [ "$ntrain" -gt 0 ]; then
    ok "cli-demo-04 RS rounds $rounds: train prompts ($ntrain) x K samples, scored by both RMs once, one selection per prompt"
else
    fail "cli-demo-04$msg"
fi

# ---- cli-demo-05: eval samples, judgments, comparisons -------------------------------------------------
neval=$(q "SELECT count(*) FROM prompts WHERE split = 'eval'")
msg=""
for r in 100 101 102; do
    k=$(q "SELECT json_extract(params, '$.k') FROM stages WHERE kind = 'sample' AND json_extract(params, '$.round') = $r AND status = 'done'")
    ns=$(q "SELECT count(*) FROM samples WHERE round = $r")
    [ -n "$k" ] && [ "$ns" = $((neval * k)) ] || msg="$msg; round $r: $ns samples, expected $neval x ${k:-?}"
    nck=$(q "SELECT count(DISTINCT checkpoint_id) FROM samples WHERE round = $r")
    [ "$nck" = 1 ] || msg="$msg; round $r sampled by $nck checkpoints"
done
dist=$(q "SELECT count(DISTINCT checkpoint_id) FROM samples WHERE round IN (100, 101, 102)")
[ "$dist" = 3 ] || msg="$msg; the eval rounds share checkpoints ($dist distinct)"
unjudged=$(q "SELECT count(*) FROM samples s WHERE round IN (100, 101, 102) AND
              (SELECT count(DISTINCT judge) FROM judgments j WHERE j.sample_id = s.id
               AND judge IN ('gold-helpfulness', 'gold-safety')) != 2" 2>&1)
[ "$unjudged" = 0 ] || msg="$msg; eval samples without both gold judgments: $unjudged"
nwc=$(q "SELECT count(*) FROM stages WHERE kind = 'world-compare' AND status = 'done'")
[ "$nwc" -ge 2 ] || msg="$msg; $nwc world-compare stages"
if [ -z "$msg" ] && [ "$neval" -gt 0 ]; then
    ok "cli-demo-05 eval rounds 100-102: eval prompts ($neval) x K each, three policies, all judged; $nwc comparisons"
else
    fail "cli-demo-05$msg"
fi

# ---- cli-demo-06: checkpoint lineage -----------------------------------------------------------------
msg=""
base=$(q "SELECT id FROM checkpoints WHERE path = '$OUT/base/model.bin'")
sft=$(q "SELECT json_extract(result, '$.checkpoint') FROM stages WHERE kind = 'demo' AND key = 'sft' AND status = 'done'")
rs=$(q "SELECT json_extract(result, '$.checkpoint') FROM stages WHERE kind = 'demo' AND key = 'rs' AND status = 'done'")
ppo=$(q "SELECT json_extract(result, '$.checkpoint') FROM stages WHERE kind = 'demo' AND key = 'ppo' AND status = 'done'")
gatt=$(q "SELECT json_extract(result, '$.checkpoint') FROM stages WHERE kind = 'demo' AND key = 'gatt' AND status = 'done'")
id_of() { q "SELECT id FROM checkpoints WHERE path = '$1'"; }
parent_of() { q "SELECT parent_id FROM checkpoints WHERE path = '$1'"; }
[ -n "$base" ] && [ "$(parent_of "$sft")" = "$base" ] || msg="$msg; sft $sft not a child of the base"
# the RS chain: each round's policy is a child of the policy that sampled it, round 1 of the SFT one
prev=$(id_of "$sft")
for pid in $(q "SELECT id FROM checkpoints WHERE path LIKE '$RUN/ckpt/policy-%' ORDER BY id"); do
    [ "$(q "SELECT parent_id FROM checkpoints WHERE id = $pid")" = "$prev" ] || msg="$msg; policy $pid not a child of $prev"
    prev=$pid
done
[ "$prev" = "$(id_of "$rs")" ] || msg="$msg; the demo's RS policy $rs is not the last of the chain"
badppo=$(q "SELECT count(*) FROM checkpoints WHERE path LIKE '$RUN/ckpt/ppo-%/iter-%' AND parent_id != $(id_of "$rs")")
[ "$badppo" = 0 ] || msg="$msg; $badppo PPO iterations not children of the RS policy"
[ "$(parent_of "$gatt")" = "$(id_of "$ppo")" ] || msg="$msg; GAtt model $gatt not a child of $ppo"
while read -r p; do [ -e "$p" ] || msg="$msg; registered path $p missing"; done < <(q "SELECT path FROM checkpoints")
if [ -z "$msg" ]; then
    ok "cli-demo-06 checkpoint lineage base -> sft -> RS policies -> PPO -> GAtt; every path exists"
else
    fail "cli-demo-06$msg"
    q "SELECT id, role, path, parent_id FROM checkpoints"
fi

# ---- cli-demo-07: the report ---------------------------------------------------------------------------
H=$RUN/report/index.html
msg=""
[ -s "$H" ] || msg="no $H"
for s in "reward model" "best-of" "PPO" "gold" "Ghost Attention"; do
    grep -qi "$s" "$H" 2>/dev/null || msg="$msg; no '$s'"
done
if [ -z "$msg" ]; then ok "cli-demo-07 the report has every section"; else fail "cli-demo-07 $msg"; fi

# ---- cli-demo-08: a second run does nothing, quickly ------------------------------------------------------
rows() { q "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM scores), (SELECT count(*) FROM
            selections), (SELECT count(*) FROM checkpoints), (SELECT count(*) FROM metrics),
            (SELECT count(*) FROM judgments), (SELECT count(*) FROM stages)"; }
before=$(rows)
s0=$(date +%s)
"${DEMO[@]}" >"$TMP/third.out" 2>&1; r=$?
s1=$(date +%s)
after=$(rows)
ndone=$(grep -c "done earlier" "$TMP/third.out")
if [ $r = 0 ] && [ "$ndone" = 12 ] && [ "$before" = "$after" ] && [ $((s1 - s0)) -le 10 ]; then
    ok "cli-demo-08 second run: 12 stages done earlier, $((s1 - s0)) s, rows unchanged"
else
    fail "cli-demo-08 second run: exit $r, $ndone stages done earlier, $((s1 - s0)) s, rows $before -> $after"
    cat "$TMP/third.out"
fi

# ---- cli-demo-09: other options into the same directory ----------------------------------------------------
"$BIN" demo --out "$OUT" --threads 2 --until world >"$TMP/o9" 2>"$TMP/e9"; r=$?
if [ $r = 1 ] && grep -q '"preset":"quick"' "$TMP/e9" && grep -q '"preset":"full"' "$TMP/e9"; then
    ok "cli-demo-09 the same --out with other options is refused"
else
    fail "cli-demo-09 exit $r"; cat "$TMP/e9"
fi

[ $failures = 0 ] || { echo "$failures failed"; exit 1; }
echo "all passed"
