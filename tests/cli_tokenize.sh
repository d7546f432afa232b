#!/usr/bin/env bash
# cli_tokenize.sh: acceptance checks of `rlhf tokenize` on the Llama 2 tokenizer (.model and .bin).
#
#   cli-tok-01  --help exits 0 and lists the options; usage errors exit 2
#   cli-tok-02  "Hello world" -> "15043 3186" (DATA.md) with both files; --bos/--eos add 1 and 2
#   cli-tok-03  chat markers and hard text: .model and .bin give the same ids; the ids of 30
#               fixture strings (tests/fixtures/spm_llama2_cases.txt, SentencePiece's own) match
#   cli-tok-04  --decode from arguments and from stdin inverts encoding; text from stdin
#   cli-tok-05  a corrupt .model exits 1 naming the file; an out-of-range id exits 1
#
# Environment: RLHF_BIN, RLHF_SHARED, RLHF_SRC. Exit 0 passed, 1 failed, 77 shared files missing.
set -u

. "$(dirname "$0")/lib.sh"
MODEL=$SHARED/models/llama2_tokenizer.model
TOKBIN=$SHARED/models/llama2_tokenizer.bin


# ---- cli-tok-01 ----------------------------------------------------------------------------------
echo "# cli-tok-01: help and usage errors"
if "$BIN" tokenize --help >"$TMP/out" 2>&1; then
    for opt in --tokenizer --bos --eos --decode; do
        if grep -q -- "$opt" "$TMP/out"; then ok "help lists $opt"; else fail "help lacks $opt"; fi
    done
else
    fail "tokenize --help exits non-zero"
fi
"$BIN" tokenize "text" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 2 ] && grep -q -- "--tokenizer is required" "$TMP/err"; then ok "missing --tokenizer -> 2"; else fail "missing --tokenizer -> $rc"; fi

need_files "$MODEL" "$TOKBIN"
"$BIN" tokenize -z "$MODEL" one two >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 2 ]; then ok "two TEXT arguments -> 2"; else fail "two TEXT arguments -> $rc"; fi
"$BIN" tokenize -z "$MODEL" --decode 12 abc >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "not a token id" "$TMP/err"; then ok "--decode abc -> 2"; else fail "--decode abc -> $rc"; fi

# ---- cli-tok-02 ----------------------------------------------------------------------------------
echo "# cli-tok-02: DATA.md facts"
for T in "$MODEL" "$TOKBIN"; do
    got=$("$BIN" tokenize --tokenizer "$T" "Hello world" 2>"$TMP/err")
    if [ "$got" = "15043 3186" ]; then ok "$(basename "$T"): Hello world -> $got"; else fail "$(basename "$T"): Hello world -> '$got' $(cat "$TMP/err")"; fi
    got=$("$BIN" tokenize --tokenizer "$T" --bos --eos "Hello world")
    if [ "$got" = "1 15043 3186 2" ]; then ok "$(basename "$T"): --bos --eos -> $got"; else fail "$(basename "$T"): --bos --eos -> '$got'"; fi
done
got=$("$BIN" tokenize -z "$MODEL" "")
if [ -z "$got" ]; then ok "empty text -> no ids"; else fail "empty text -> '$got'"; fi

# ---- cli-tok-03 ----------------------------------------------------------------------------------
echo "# cli-tok-03: .model and .bin agree; ids equal SentencePiece's"
texts=("[INST] <<SYS>>
You are helpful.
<</SYS>>

Hi [/INST]" "<s> </s> <unk>" "  two leading, trailing  " "tabs	and
newlines" "café naïve 你好 😀 👨‍👩‍👧‍👦" "1234567890")
for s in "${texts[@]}"; do
    a=$("$BIN" tokenize -z "$MODEL" "$s")
    b=$("$BIN" tokenize -z "$TOKBIN" "$s")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok ".model = .bin for '${s:0:20}'"; else fail ".model '$a' vs .bin '$b' for '${s:0:20}'"; fi
done
FIX=$SRC/tests/fixtures/spm_llama2_cases.txt
if [ -f "$FIX" ]; then
    # fixture lines without escapes (plain text), up to 40 of them
    n=0
    bad=0
    while IFS= read -r line; do
        kind=${line%%$'\t'*}
        rest=${line#*$'\t'}
        text=${rest%%$'\t'*}
        rest=${rest#*$'\t'}
        ids=${rest%%$'\t'*}
        [ "$kind" = "E" ] || continue
        case "$text" in *\\*) continue ;; esac
        [ -n "$text" ] || continue
        [ "$ids" = "-" ] && ids=""
        got=$("$BIN" tokenize -z "$MODEL" -- "$text")
        if [ "$got" != "$ids" ]; then
            bad=$((bad + 1))
            echo "    differs: '$text': got '$got' want '$ids'"
        fi
        n=$((n + 1))
        [ $n -ge 30 ] && break
    done <"$FIX"
    if [ $n -ge 20 ] && [ $bad -eq 0 ]; then ok "$n fixture strings: ids equal SentencePiece's"; else fail "$bad of $n fixture strings differ"; fi
else
    fail "fixture $FIX missing"
fi

# ---- cli-tok-04 ----------------------------------------------------------------------------------
echo "# cli-tok-04: --decode"
for T in "$MODEL" "$TOKBIN"; do
    got=$("$BIN" tokenize -z "$T" --decode 1 15043 3186 2)
    if [ "$got" = "Hello world" ]; then ok "$(basename "$T"): decode args -> '$got'"; else fail "$(basename "$T"): decode args -> '$got'"; fi
    got=$(echo "1 15043, 3186" | "$BIN" tokenize -z "$T" --decode)
    if [ "$got" = "Hello world" ]; then ok "$(basename "$T"): decode stdin -> '$got'"; else fail "$(basename "$T"): decode stdin -> '$got'"; fi
done
s="Ünïcödé  and 中文 and 🎉, [INST] x [/INST]"
ids=$("$BIN" tokenize -z "$MODEL" "$s")
# shellcheck disable=SC2086
back=$("$BIN" tokenize -z "$MODEL" --decode $ids)
if [ "$back" = "$s" ]; then ok ".model round trip without BOS"; else fail ".model round trip: '$back'"; fi
printf 'from stdin\n' >"$TMP/in"
got=$("$BIN" tokenize -z "$MODEL" <"$TMP/in")
want=$("$BIN" tokenize -z "$MODEL" "from stdin
")
if [ -n "$got" ] && [ "$got" = "$want" ]; then ok "text from stdin -> $got"; else fail "text from stdin -> '$got' want '$want'"; fi

# ---- cli-tok-05 ----------------------------------------------------------------------------------
echo "# cli-tok-05: errors"
head -c 1000 "$MODEL" >"$TMP/cut.model"
"$BIN" tokenize -z "$TMP/cut.model" "x" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "cut.model" "$TMP/err"; then ok "truncated .model -> 1: $(head -1 "$TMP/err")"; else fail "truncated .model -> $rc: $(head -2 "$TMP/err")"; fi
"$BIN" tokenize -z "$MODEL" --decode 15043 32000 >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "32000" "$TMP/err"; then ok "id 32000 -> 1"; else fail "id 32000 -> $rc: $(head -2 "$TMP/err")"; fi

finish
