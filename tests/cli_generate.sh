#!/usr/bin/env bash
# cli_generate.sh: acceptance checks of the `rlhf` program's generate command and its error paths.
#
#   cli-gen-01  `rlhf --help`, `rlhf help`, `rlhf generate --help` exit 0 and print usage
#   cli-gen-02  an unknown option or command exits 2 with the usage on stderr; a bad number exits 2
#   cli-gen-03  a truncated checkpoint exits 1 and stderr names the file
#   cli-gen-04  greedy aidreams260K (--temperature 0 --steps 100) prints DATA.md's reference text
#   cli-gen-05  the same with --ids: the first ten ids equal DATA.md's
#   cli-gen-06  full greedy id sequences equal tests/fixtures/greedy_{aidreams,stories}260K.txt
#               (made with llama2.c run.c -n N: N ids, so we run --steps N)
#
# Environment: RLHF_BIN (the program), RLHF_SHARED (../shared), RLHF_SRC (the checkout).
# Exit status: 0 all passed, 1 a check failed, 77 (skip) when a needed shared file is missing
# (after the checks that need none have passed).
set -u

. "$(dirname "$0")/lib.sh"
FIX=$SRC/tests/fixtures
AID=$SHARED/models/aidreams260K.bin
AIDTOK=$SHARED/models/aidreams260K_tok512.bin
STORIES=$SHARED/models/stories260K.bin
REF_TEXT='"Echoes of vectors unfold, a gentle hum of precision, as I sense the nodes,'
REF_IDS='319 459 355 260 275 429 339 315 374 327'

# run OUTFILE ERRFILE cmd...: runs the program, returns its exit status
run() {
    local out=$1 err=$2
    shift 2
    "$BIN" "$@" >"$out" 2>"$err"
}

# ---- cli-gen-01: help --------------------------------------------------------------------------------
echo "# cli-gen-01: help exits 0"
for args in "--help" "help" "" "generate --help" "help generate" "model init --help" \
    "model info --help" "bench train --help" "bench sample --help" "--version"; do
    # shellcheck disable=SC2086
    run "$TMP/out" "$TMP/err" $args
    rc=$?
    if [ $rc -eq 0 ] && [ -s "$TMP/out" ]; then ok "rlhf $args -> 0"; else fail "rlhf $args -> $rc (want 0 and output)"; fi
done
run "$TMP/out" "$TMP/err" generate --help
for opt in --model --tokenizer --prompt --temperature --top-p --top-k --steps --seed --ids --n \
    --threads --device --quiet; do
    if grep -q -- "$opt" "$TMP/out"; then ok "generate --help lists $opt"; else fail "generate --help lacks $opt"; fi
done
if grep -q "default: 256" "$TMP/out"; then ok "generate --help shows the --steps default"; else fail "generate --help shows no default for --steps"; fi

# ---- cli-gen-02: usage errors exit 2 ---------------------------------------------------------------------
echo "# cli-gen-02: usage errors exit 2"
check_usage() { # description, expected stderr pattern, args...
    local what=$1 pat=$2
    shift 2
    run "$TMP/out" "$TMP/err" "$@"
    local rc=$?
    if [ $rc -ne 2 ]; then
        fail "$what: exit $rc, want 2"
    elif ! grep -q -- "$pat" "$TMP/err"; then
        fail "$what: stderr lacks '$pat':"
        sed 's/^/    /' "$TMP/err" | head -5
    elif ! grep -q "usage:" "$TMP/err"; then
        fail "$what: no usage on stderr"
    else
        ok "$what -> 2"
    fi
}
check_usage "unknown option" "unknown option '--no-such-option'" generate --model x.bin --no-such-option
check_usage "unknown command" "unknown command 'no-such-command'" no-such-command
check_usage "unknown subcommand" "unknown subcommand" model frobnicate
check_usage "non-numeric --steps" "--steps: expected a non-negative integer, got 'x'" generate --model x.bin --steps x
check_usage "negative --n" "--n: expected a positive integer, got '-3'" generate --model x.bin --n -3
check_usage "bad --temperature" "--temperature: expected a non-negative number, got 'hot'" generate --model x.bin --temperature=hot
check_usage "missing value" "--seed needs a value" generate --model x.bin --seed
check_usage "missing --model" "--model is required" generate --tokenizer t.bin
check_usage "bad --top-p" "--top-p" generate --model x.bin --ids --top-p 1.5
check_usage "bench train bad --batch" "--batch: expected a positive integer, got '0'" bench train --batch 0

# ---- cli-gen-03: a truncated checkpoint is a run-time error naming the file -------------------------
echo "# cli-gen-03: truncated checkpoint exits 1 naming the file"
if run "$TMP/out" "$TMP/err" model init --dim 16 --hidden 32 --layers 2 --heads 2 --kv-heads 1 \
    --vocab 32 --seq 16 --out "$TMP/tiny.bin"; then
    ok "model init wrote a tiny checkpoint"
    size=$(wc -c <"$TMP/tiny.bin")
    head -c $((size - 100)) "$TMP/tiny.bin" >"$TMP/truncated.bin"
    run "$TMP/out" "$TMP/err" generate --model "$TMP/truncated.bin" --ids --temperature 0 --steps 4
    rc=$?
    if [ $rc -eq 1 ] && grep -q "truncated.bin" "$TMP/err" && grep -q "^rlhf generate: error: " "$TMP/err"; then
        ok "truncated checkpoint -> 1: $(head -1 "$TMP/err")"
    else
        fail "truncated checkpoint -> $rc, stderr: $(head -3 "$TMP/err")"
    fi
    run "$TMP/out" "$TMP/err" generate --model "$TMP/does-not-exist.bin" --ids
    rc=$?
    if [ $rc -eq 1 ] && grep -q "does-not-exist.bin" "$TMP/err"; then ok "missing checkpoint -> 1"; else fail "missing checkpoint -> $rc: $(head -3 "$TMP/err")"; fi
    run "$TMP/out" "$TMP/err" generate --model "$TMP/tiny.bin" --ids --temperature 0 --steps 8 --device cuda:7
    rc=$?
    if [ $rc -eq 1 ] && grep -q "^rlhf generate: error: " "$TMP/err"; then ok "--device cuda:7 -> 1: $(head -1 "$TMP/err")"; else fail "--device cuda:7 -> $rc: $(head -3 "$TMP/err")"; fi
else
    fail "model init -> $?: $(head -3 "$TMP/err")"
fi

# ---- shared files ------------------------------------------------------------------------------------------
need_files "$AID" "$AIDTOK" "$STORIES" # after the checks above: exits 1 when one failed

# ---- cli-gen-04: reference text -----------------------------------------------------------------------------
echo "# cli-gen-04: greedy aidreams260K text"
if run "$TMP/out" "$TMP/err" generate --model "$AID" --tokenizer "$AIDTOK" --temperature 0 --steps 100; then
    first=$(head -1 "$TMP/out")
    if [ "${first:0:${#REF_TEXT}}" = "$REF_TEXT" ]; then
        ok "text begins with the reference: ${first:0:80}..."
    else
        fail "text differs from the reference:"
        echo "    want: $REF_TEXT"
        echo "    got:  ${first:0:${#REF_TEXT}}"
    fi
else
    fail "generate -> $?: $(head -3 "$TMP/err")"
fi

# ---- cli-gen-05: reference ids --------------------------------------------------------------------------------
echo "# cli-gen-05: greedy aidreams260K ids"
if run "$TMP/out" "$TMP/err" generate --model "$AID" --tokenizer "$AIDTOK" --temperature 0 --steps 100 --ids; then
    got=$(head -1 "$TMP/out" | cut -d' ' -f1-10)
    n=$(head -1 "$TMP/out" | wc -w)
    if [ "$got" = "$REF_IDS" ]; then ok "first ten ids: $got"; else fail "first ten ids: got '$got', want '$REF_IDS'"; fi
    if [ "$n" -eq 100 ]; then ok "--steps 100 from BOS gives 100 ids (as run.c -n 100)"; else fail "--steps 100 gave $n ids, want 100"; fi
else
    fail "generate --ids -> $?: $(head -3 "$TMP/err")"
fi
# --ids needs no tokenizer when there is no prompt
if run "$TMP/out" "$TMP/err" generate --model "$AID" --temperature 0 --steps 10 --ids && [ "$(cat "$TMP/out")" = "$REF_IDS" ]; then
    ok "--ids without --tokenizer"
else
    fail "--ids without --tokenizer: $(cat "$TMP/out") $(head -3 "$TMP/err")"
fi

# ---- cli-gen-06: full sequences against llama2.c run.c ------------------------------------------------------
echo "# cli-gen-06: full greedy sequences against llama2.c run.c"
for name in aidreams260K stories260K; do
    fx=$FIX/greedy_$name.txt
    if [ ! -f "$fx" ]; then
        echo "note: $fx not present, check skipped"
        continue
    fi
    want=$(grep -v '^#' "$fx" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
    n=$(echo "$want" | wc -w)
    # the fixture records run.c's -n; run.c -n N from BOS generates N ids unless BOS comes first
    steps=$(sed -n 's/^# Command: .* -n \([0-9][0-9]*\).*/\1/p' "$fx" | head -1)
    steps=${steps:-$n}
    if run "$TMP/out" "$TMP/err" generate --model "$SHARED/models/$name.bin" --tokenizer "$AIDTOK" \
        --temperature 0 --steps "$steps" --ids; then
        got=$(head -1 "$TMP/out")
        if [ "$got" = "$want" ]; then
            ok "$name: all $n ids equal (--steps $steps)"
        else
            fail "$name: ids differ from $fx (--steps $steps)"
            echo "$want" | tr ' ' '\n' >"$TMP/want"
            echo "$got" | tr ' ' '\n' >"$TMP/got"
            echo "    got $(wc -l <"$TMP/got") ids, want $(wc -l <"$TMP/want"); first difference (line = index+1):"
            diff "$TMP/want" "$TMP/got" | head -4 | sed 's/^/    /'
        fi
    else
        fail "$name: generate -> $?: $(head -3 "$TMP/err")"
    fi
done

# ---- cli-gen-07: prompts, seeds and batches ----------------------------------------------------------------
echo "# cli-gen-07: prompt, seeds, --n"
if run "$TMP/out" "$TMP/err" generate --model "$AID" --tokenizer "$AIDTOK" --temperature 0 --steps 40 \
    --prompt "Echoes of vectors"; then
    first=$(head -1 "$TMP/out")
    if [ "${first:0:17}" = "Echoes of vectors" ] && [ ${#first} -gt 17 ]; then ok "prompt echoed and continued: ${first:0:60}..."; else fail "prompt: got '${first:0:60}'"; fi
else
    fail "generate --prompt -> $?: $(head -3 "$TMP/err")"
fi
gen() { "$BIN" generate --model "$AID" --tokenizer "$AIDTOK" --temperature 1 --top-p 0.9 --steps 30 --ids "$@" 2>"$TMP/err"; }
a=$(gen --seed 7)
b=$(gen --seed 7)
c=$(gen --seed 8)
three=$(gen --seed 7 --n 3 --batch 2)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "same seed, same ids"; else fail "same seed gave '$a' and '$b'"; fi
if [ "$(echo "$three" | wc -l)" -eq 3 ]; then ok "--n 3 prints 3 lines"; else fail "--n 3 printed: $three"; fi
if [ "$(echo "$three" | sed -n 1p)" = "$a" ] && [ "$(echo "$three" | sed -n 2p)" = "$c" ]; then
    ok "sequence i of --n uses seed + i, independent of the batch"
else
    fail "--n 3 --seed 7 lines 1-2 differ from --seed 7 and --seed 8 alone"
fi
if run "$TMP/out" "$TMP/err" generate --model "$AID" --tokenizer "$AIDTOK" --steps 20 -v && grep -q "^seed [0-9]" "$TMP/err" && grep -q "achieved tok/s" "$TMP/err"; then
    ok "-v prints the seed and tok/s on stderr"
else
    fail "-v: $(head -5 "$TMP/err")"
fi

finish
