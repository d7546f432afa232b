#!/usr/bin/env bash
# cli_pretrain.sh: acceptance checks of `rlhf pretrain` on a slice of the shared corpus.
#
#   cli-pt-01  --help lists the presets and options; usage errors exit 2; a missing or corrupt
#              corpus file exits 1 naming the file
#   cli-pt-02  a tiny model on ~150 kB of text: validation loss goes clearly down; DIR holds
#              model.bin (loads in `rlhf model info` and `rlhf generate`), state.bin, metrics.tsv
#              (one row per step); a second run of the same data hits the token cache
#   cli-pt-03  stopped at step N (--stop-after) and resumed: weights byte-identical to the
#              uninterrupted run, and the same losses, learning rates and gradient norms per step
#   cli-pt-04  kill -9 in the middle of a run, then the same command: identical again
#   cli-pt-05  SIGINT saves the state (exit 130) and the resumed run is identical again
#   cli-pt-06  resuming with a conflicting option exits 1 and says so; an edited corpus is
#              re-tokenized for a new run and refused for a resume; --restart starts over
#   cli-pt-07  with a tokenizer.model made by `rlhf tokenizer train` and --format hf: DIR/hf/
#              is a Hugging Face directory that `rlhf generate` reads
#
# Environment: RLHF_BIN (the program), RLHF_SHARED (../shared), RLHF_SRC (the checkout).
# Exit status: 0 all passed, 1 a check failed, 77 (skip) when a needed shared file is missing.
set -u

. "$(dirname "$0")/lib.sh"
TOK=$SHARED/models/aidreams260K_tok512.bin
SHAK=$SHARED/data/corpus/tiny_shakespeare.txt.gz
AUSTEN=$SHARED/data/corpus/janeausten.txt.gz

BGPID=
at_exit() { [ -n "$BGPID" ] && kill -9 "$BGPID" 2>/dev/null; }

# ---- cli-pt-01: help and usage errors (no shared files needed) ------------------------------------
echo "# cli-pt-01: help, usage errors"
"$BIN" pretrain --help >"$TMP/help" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "pretrain --help -> 0" || fail "pretrain --help -> $rc"
for w in tiny small medium base --corpus --tokenizer --out --config --steps --batch --grad-accum \
    --lr --warmup --seed --threads --val-fraction --eval-every --ckpt-every --resume --stop-after \
    "parameters at V = 512"; do
    grep -q -- "$w" "$TMP/help" && ok "help mentions $w" || fail "help lacks $w"
done
usage() { # what, stderr pattern, args...
    local what=$1 pat=$2
    shift 2
    "$BIN" pretrain "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$pat" "$TMP/err"; then ok "$what -> 2"; else
        fail "$what -> $rc, stderr:"
        head -3 "$TMP/err" | sed 's/^/    /'
    fi
}
usage "no --out" "--out DIR is required" --corpus x.txt --tokenizer t.bin
usage "unknown preset" "unknown preset 'huge'" --out "$TMP/u" --config huge
usage "--resume with --restart" "exclude each other" --out "$TMP/u" --resume --restart
usage "no corpus for a new run" "required for a new run" --out "$TMP/u" --tokenizer t.bin
usage "bad number" "expected" --out "$TMP/u" --steps abc
usage "val fraction above 0.5" "at most 0.5" --out "$TMP/u" --val-fraction 0.9

need_files "$TOK" "$SHAK" "$AUSTEN"

# the slice: ~100 kB of Shakespeare (plain) and ~60 kB of Austen (gzip)
zcat "$SHAK" | head -c 100000 >"$TMP/shak.txt"
zcat "$AUSTEN" | head -c 60000 | gzip -c >"$TMP/austen.txt.gz"
CORPUS=("$TMP/shak.txt" "$TMP/austen.txt.gz")
STEPS=60
ARGS=(--tokenizer "$TOK" --dim 32 --hidden 96 --layers 2 --heads 4 --kv-heads 2 --seq 64
    --batch 8 --steps $STEPS --lr 3e-3 --eval-every 20 --ckpt-every 10 --threads 1)

bad_input() { # what, pattern, corpus file
    "$BIN" pretrain --corpus "$3" "${ARGS[@]}" --out "$TMP/bad" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$2" "$TMP/err"; then ok "$1 -> 1, names the file"; else
        fail "$1 -> $rc, stderr:"
        head -3 "$TMP/err" | sed 's/^/    /'
    fi
}
bad_input "missing corpus file" "$TMP/nope.txt: cannot open" "$TMP/nope.txt"
head -c 20000 "$TMP/austen.txt.gz" >"$TMP/cut.txt.gz"
bad_input "truncated .gz corpus" "$TMP/cut.txt.gz: truncated gzip" "$TMP/cut.txt.gz"
: >"$TMP/empty.txt"
bad_input "empty corpus" "$TMP/empty.txt: no text" "$TMP/empty.txt"

# metrics columns that must match between runs: step, train loss, val loss, lr, grad norm
losses() { cut -f1-5 "$1/metrics.tsv"; }
same_run() { # what, dir: weights and per-step metrics equal to run A's
    if cmp -s "$TMP/A/model.bin" "$2/model.bin"; then ok "$1: model.bin byte-identical"; else
        fail "$1: model.bin differs from the uninterrupted run"
    fi
    if diff <(losses "$TMP/A") <(losses "$2") >"$TMP/diff"; then
        ok "$1: per-step losses, lr and grad norms identical"
    else
        fail "$1: metrics differ:"
        head -6 "$TMP/diff" | sed 's/^/    /'
    fi
}

# ---- cli-pt-02: the loss goes down -------------------------------------------------------------------
echo "# cli-pt-02: training brings the validation loss down"
"$BIN" pretrain --corpus "${CORPUS[@]}" "${ARGS[@]}" --out "$TMP/A" >"$TMP/A.out" 2>"$TMP/A.err"
rc=$?
if [ $rc -ne 0 ]; then
    fail "run A -> $rc"
    sed 's/^/    /' "$TMP/A.err" | head -5
    exit 1
fi
read -r v0 v1 rows < <(awk -F'\t' 'NR > 1 { if ($3 != "nan") { if (!seen) { v0 = $3; seen = 1 } v1 = $3 } n++ }
    END { print v0, v1, n }' "$TMP/A/metrics.tsv")
[ "$rows" = $((STEPS + 1)) ] && ok "metrics.tsv has one row per step and the initial one" ||
    fail "metrics.tsv has $rows rows, want $((STEPS + 1))"
if awk -v a="$v0" -v b="$v1" 'BEGIN { exit !(a > 6.0 && b < a - 1.0) }'; then
    ok "val loss $v0 -> $v1 (initial near ln 512 = 6.24, then down by more than 1)"
else
    fail "val loss $v0 -> $v1: not clearly down"
fi
for f in model.bin state.bin run.txt tokens.bin; do
    [ -s "$TMP/A/$f" ] && ok "DIR has $f" || fail "DIR lacks $f"
done
ls "$TMP/A" | grep -q '\.tmp$' && fail "a temporary file was left in DIR" || ok "no temporary files left"
if "$BIN" model info "$TMP/A/model.bin" >"$TMP/info" 2>&1 && grep -q "dim 32" "$TMP/info"; then
    ok "model info reads model.bin"
else fail "model info cannot read model.bin"; fi
if "$BIN" generate --model "$TMP/A/model.bin" --tokenizer "$TOK" --steps 20 --seed 1 -q \
    >"$TMP/gen" 2>&1; then ok "generate runs on model.bin"; else fail "generate failed on model.bin"; fi
grep -q "no cache yet" "$TMP/A.out" && ok "first run tokenizes" || fail "first run: no 'no cache yet'"
"$BIN" pretrain --corpus "${CORPUS[@]}" "${ARGS[@]}" --out "$TMP/A" >"$TMP/A2.out" 2>&1
rc=$?
{ [ $rc -eq 0 ] && grep -q "cache hit" "$TMP/A2.out"; } && ok "rerun of a finished run -> 0, cache hit" ||
    fail "rerun of the finished run -> $rc"

# ---- cli-pt-03: --stop-after and resume ----------------------------------------------------------------
echo "# cli-pt-03: stop at step 30, resume"
"$BIN" pretrain --corpus "${CORPUS[@]}" "${ARGS[@]}" --out "$TMP/B" --stop-after 30 >"$TMP/B.out" 2>&1
rc=$?
last=$(tail -1 "$TMP/B/metrics.tsv" | cut -f1)
{ [ $rc -eq 0 ] && [ "$last" = 30 ]; } && ok "--stop-after 30 -> 0 at step 30" ||
    fail "--stop-after 30 -> $rc, last step $last"
# resume with only --out (and the thread count): the rest comes from DIR
"$BIN" pretrain --out "$TMP/B" --threads 1 >"$TMP/B2.out" 2>&1
rc=$?
{ [ $rc -eq 0 ] && grep -q "resuming" "$TMP/B2.out"; } && ok "resume -> 0" || fail "resume -> $rc"
same_run "stop + resume" "$TMP/B"

# ---- cli-pt-04: kill -9 --------------------------------------------------------------------------------
echo "# cli-pt-04: kill -9 in the middle of a run"
"$BIN" pretrain --corpus "${CORPUS[@]}" "${ARGS[@]}" --out "$TMP/C" >"$TMP/C.out" 2>&1 &
BGPID=$!
killed=no
for _ in $(seq 1 3000); do
    n=$({ wc -l <"$TMP/C/metrics.tsv"; } 2>/dev/null || echo 0)
    if [ "${n:-0}" -ge 24 ]; then
        kill -9 $BGPID 2>/dev/null && killed=yes
        break
    fi
    kill -0 $BGPID 2>/dev/null || break
    sleep 0.01
done
wait $BGPID 2>/dev/null
BGPID=
rows=$(($(wc -l <"$TMP/C/metrics.tsv") - 1))
if [ $killed = yes ] && [ $rows -lt $STEPS ]; then
    ok "killed with -9 after $rows steps"
    "$BIN" pretrain --corpus "${CORPUS[@]}" "${ARGS[@]}" --out "$TMP/C" >"$TMP/C2.out" 2>&1
    rc=$?
    from=$(sed -n 's/.*at step \([0-9]*\),.*/\1/p' "$TMP/C2.out" | head -1)
    { [ $rc -eq 0 ] && [ -n "$from" ]; } && ok "resume after kill -9 -> 0 (from step $from)" ||
        fail "resume after kill -9 -> $rc"
    same_run "kill -9 + resume" "$TMP/C"
else
    fail "could not kill the run in its middle (killed=$killed, $rows steps done)"
fi

# ---- cli-pt-05: SIGINT -----------------------------------------------------------------------------------
echo "# cli-pt-05: SIGINT saves the state"
"$BIN" pretrain --corpus "${CORPUS[@]}" "${ARGS[@]}" --out "$TMP/D" >"$TMP/D.out" 2>&1 &
BGPID=$!
sent=no
for _ in $(seq 1 3000); do
    n=$({ wc -l <"$TMP/D/metrics.tsv"; } 2>/dev/null || echo 0)
    if [ "${n:-0}" -ge 14 ]; then
        kill -INT $BGPID 2>/dev/null && sent=yes
        break
    fi
    kill -0 $BGPID 2>/dev/null || break
    sleep 0.01
done
wait $BGPID
rc=$?
BGPID=
last=$(tail -1 "$TMP/D/metrics.tsv" | cut -f1)
if [ $sent = yes ] && [ $rc -eq 130 ] && grep -q "interrupted" "$TMP/D.out" && [ "$last" -lt $STEPS ]; then
    ok "SIGINT -> 130 at step $last, state saved"
    "$BIN" pretrain --out "$TMP/D" --threads 1 >"$TMP/D2.out" 2>&1
    from=$(sed -n 's/.*at step \([0-9]*\),.*/\1/p' "$TMP/D2.out" | head -1)
    [ "$from" = "$last" ] && ok "resumed from the interrupted step $last" ||
        fail "resumed from step '$from', interrupted at $last"
    same_run "SIGINT + resume" "$TMP/D"
else
    fail "SIGINT: sent=$sent rc=$rc last step $last"
    head -3 "$TMP/D.out" | sed 's/^/    /'
fi

# ---- cli-pt-06: conflicts, changed inputs, --restart -------------------------------------------------------
echo "# cli-pt-06: conflicting options, changed corpus, --restart"
"$BIN" pretrain --out "$TMP/A" --batch 4 --threads 1 >"$TMP/out" 2>"$TMP/err"
rc=$?
{ [ $rc -eq 1 ] && grep -q -- "--batch 4 differs" "$TMP/err"; } && ok "resume with another --batch -> 1" ||
    fail "resume with another --batch -> $rc"
"$BIN" pretrain --out "$TMP/A" --dim 48 --threads 1 >"$TMP/out" 2>"$TMP/err"
rc=$?
{ [ $rc -eq 1 ] && grep -q -- "--dim 48 differs" "$TMP/err"; } && ok "resume with another --dim -> 1" ||
    fail "resume with another --dim -> $rc"
cp "$TMP/B/metrics.tsv" "$TMP/B.metrics"
printf 'An added paragraph.\n' >>"$TMP/shak.txt"
"$BIN" pretrain --out "$TMP/B" --threads 1 >"$TMP/out" 2>"$TMP/err"
rc=$?
{ [ $rc -eq 1 ] && grep -q "corpus or tokenizer changed" "$TMP/err"; } &&
    ok "resume after the corpus changed -> 1" || fail "resume after the corpus changed -> $rc"
cmp -s "$TMP/B/metrics.tsv" "$TMP/B.metrics" && ok "the refused resume left the run alone" ||
    fail "the refused resume changed metrics.tsv"
printf 'Another added paragraph.\n' >>"$TMP/shak.txt" # (the refused resume re-cached the first edit)
"$BIN" pretrain --corpus "${CORPUS[@]}" "${ARGS[@]}" --steps 5 --out "$TMP/B" --restart >"$TMP/out" 2>&1
rc=$?
{ [ $rc -eq 0 ] && grep -q "inputs or tokenizer changed" "$TMP/out" && grep -q "new run" "$TMP/out"; } &&
    ok "--restart on the changed corpus: re-tokenized, new run" || fail "--restart -> $rc"
rows=$(($(wc -l <"$TMP/B/metrics.tsv") - 1))
[ $rows -eq 6 ] && ok "the restarted run has its own metrics" || fail "restarted metrics rows $rows"

# ---- cli-pt-07: a trained tokenizer.model and Hugging Face output --------------------------------------
echo "# cli-pt-07: tokenizer.model from rlhf tokenizer train, --format hf"
if "$BIN" tokenizer train --corpus "$TMP/shak.txt" --vocab 400 --out "$TMP/t.model" -q &&
    "$BIN" pretrain --corpus "$TMP/shak.txt" --tokenizer "$TMP/t.model" --config tiny --dim 32 \
        --layers 2 --seq 64 --batch 4 --steps 3 --threads 1 --format hf --out "$TMP/H" >"$TMP/out" 2>&1 &&
    [ -f "$TMP/H/hf/config.json" ] && [ -f "$TMP/H/hf/model.safetensors" ] &&
    "$BIN" generate -m "$TMP/H/hf" -z "$TMP/t.model" -n 8 -t 0 >/dev/null; then
    ok "pretrain with a .model tokenizer writes DIR/hf/, which generate reads"
else fail "pretrain --format hf with a .model tokenizer: $(tail -3 "$TMP/out")"; fi

finish
