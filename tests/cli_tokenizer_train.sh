#!/usr/bin/env bash
# cli_tokenizer_train.sh: `rlhf tokenizer train` end to end, checked with SentencePiece itself.
#
#   cli-tt-01  --help lists the options; usage errors exit 2; a missing corpus file exits 1
#              naming it
#   cli-tt-02  train on a slice of ../shared/data/corpus (brown, first 3 MB; vocab 2048) with a
#              progress line; a second run gives the same bytes
#   cli-tt-03  python3 + sentencepiece loads the model: vocab size, <unk>/<s>/</s> ids, byte
#              pieces 3..258; a held-out paragraph (Jane Austen, not trained on) encodes without
#              <unk> and decodes back to itself; digits come out one a piece; CJK and emoji go
#              through byte pieces and round-trip; SentencePiece's encoding of the 5000 most
#              frequent training words equals the trainer's own segmentation (--dump-words);
#              tokens per byte on the held-out text, next to Llama 2's tokenizer
#   cli-tt-04  our .model reader and encoder (rlhf tokenize) equal SentencePiece on 150 held-out lines
#
# Environment: RLHF_BIN, RLHF_SHARED, RLHF_SRC; PYTHON (default /usr/bin/python3).
# Exit status: 0 all passed, 1 a check failed, 77 (skip) when the shared corpus or python3's
# sentencepiece is missing (after the checks that need neither have passed).
set -u

. "$(dirname "$0")/lib.sh"
PY=${PYTHON:-/usr/bin/python3}
BROWN=$SHARED/data/corpus/brown.txt.gz
AUSTEN=$SHARED/data/corpus/janeausten.txt.gz
LLAMA=$SHARED/models/llama2_tokenizer.model

# ---- cli-tt-01 ----------------------------------------------------------------------------------------
echo "# cli-tt-01: help, usage errors, missing file"
if "$BIN" tokenizer train --help >"$TMP/out" 2>&1; then
    for opt in --corpus --out --vocab --character-coverage --max-bytes --dump-words --threads; do
        grep -q -- "$opt" "$TMP/out" || fail "help lacks $opt"
    done
    ok "tokenizer train --help"
else
    fail "tokenizer train --help exits $?"
fi
"$BIN" --help | grep -q "tokenizer train" && ok "rlhf --help lists tokenizer train" || fail "rlhf --help lacks tokenizer train"
usage() { # what, pattern, args...
    local what=$1 pat=$2
    shift 2
    "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$pat" "$TMP/err"; then ok "$what -> 2"; else fail "$what -> $rc: $(head -2 "$TMP/err")"; fi
}
echo "x y z" >"$TMP/tiny.txt"
usage "no --corpus" "--corpus is required" tokenizer train --out "$TMP/x.model"
usage "no --out" "--out is required" tokenizer train --corpus "$TMP/tiny.txt"
usage "bad --vocab" "--vocab" tokenizer train --corpus "$TMP/tiny.txt" --out "$TMP/x.model" --vocab -5
usage "bad --character-coverage" "--character-coverage" tokenizer train --corpus "$TMP/tiny.txt" --out "$TMP/x.model" --character-coverage 1.5
"$BIN" tokenizer train --corpus "$TMP/tiny.txt" "$TMP/nope.txt.gz" --out "$TMP/x.model" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "nope.txt.gz" "$TMP/err" && [ ! -e "$TMP/x.model" ]; then ok "missing corpus file -> 1: $(head -1 "$TMP/err")"; else fail "missing corpus file -> $rc: $(head -2 "$TMP/err")"; fi
"$BIN" tokenizer train --corpus "$TMP/tiny.txt" --out "$TMP/x.model" --vocab 300 >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "too large" "$TMP/err"; then ok "vocab too large for the corpus -> 1"; else fail "vocab too large -> $rc: $(head -2 "$TMP/err")"; fi

# ---- cli-tt-02 ----------------------------------------------------------------------------------------
need_files "$BROWN" "$AUSTEN"
echo "# cli-tt-02: training on a slice of the shared corpus"
MODEL=$TMP/tok.model
if "$BIN" tokenizer train --corpus "$BROWN" --max-bytes 3000000 --vocab 2048 --out "$MODEL" \
    --dump-words "$TMP/words.tsv" --dump-count 5000 --progress >"$TMP/out" 2>"$TMP/err"; then
    ok "trained: $(tr '\n' ' ' <"$TMP/out")"
    if grep -q "merges .*ETA" "$TMP/err"; then ok "progress line with ETA"; else fail "no progress line: $(head -c 200 "$TMP/err")"; fi
else
    fail "training -> $?: $(head -3 "$TMP/err")"
    finish
fi
"$BIN" tokenizer train --corpus "$BROWN" --max-bytes 3000000 --vocab 2048 --out "$TMP/tok2.model" -q
if cmp -s "$MODEL" "$TMP/tok2.model"; then ok "same corpus and options, same bytes"; else fail "two runs gave different files"; fi

# ---- cli-tt-03 ----------------------------------------------------------------------------------------
if ! "$PY" -c "import sentencepiece" 2>/dev/null; then
    skip "$PY has no sentencepiece module (Debian: python3-sentencepiece); SentencePiece checks not run"
fi
echo "# cli-tt-03: SentencePiece loads and encodes with the model"
# held-out text: Jane Austen was not trained on
"$PY" -c "
import gzip, sys
lines = gzip.open(sys.argv[1], 'rt', encoding='utf-8').read().split('\n')
sys.stdout.write('\n'.join(l for l in lines[20000:20400] if l.strip()))
" "$AUSTEN" >"$TMP/heldout.txt"
"$PY" - "$MODEL" "$TMP/words.tsv" "$TMP/heldout.txt" "$LLAMA" <<'EOF'
import os, sys
import sentencepiece as spm
model, words, heldout, llama = sys.argv[1:5]
sp = spm.SentencePieceProcessor(model_file=model)
bad = 0
def check(cond, what):
    global bad
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond: bad += 1

check(sp.get_piece_size() == 2048, 'vocab size %d' % sp.get_piece_size())
check((sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1),
      'unk/bos/eos/pad ids %s' % str((sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id())))
check([sp.id_to_piece(i) for i in range(3)] == ['<unk>', '<s>', '</s>'], 'special pieces')
check(all(sp.is_byte(3 + b) and sp.id_to_piece(3 + b) == '<0x%02X>' % b for b in range(256)),
      'byte pieces <0x00>..<0xFF> at 3..258')

text = open(heldout, encoding='utf-8').read()
paras = [p for p in text.split('\n') if p.strip()]
unk = sum(sp.encode(p).count(0) for p in paras)
check(unk == 0, 'held-out text (%d lines, %d bytes): %d <unk>' % (len(paras), len(text.encode()), unk))
rt = sum(sp.decode(sp.encode(p)) != p for p in paras)
check(rt == 0, 'held-out lines decode back to themselves (%d differ)' % rt)

s = 'In 1984, 250 people paid $3.50 for 12 tickets; 2023-11-23.'
pieces = sp.encode(s, out_type=str)
multi = [p for p in pieces if any(c.isdigit() for c in p) and len(p) > 1 and not p.startswith('<0x')]
check(not multi and sp.decode(sp.encode(s)) == s, 'digits one a piece: %s' % ' '.join(pieces))

for s in ['日本語のテキスト', 'emoji 😀👍🏽 and ZWJ 👩‍💻', 'Ελληνικά и кириллица']:
    pieces = sp.encode(s, out_type=str)
    ids = sp.encode(s)
    check(0 not in ids and any(sp.is_byte(i) for i in ids) and sp.decode(ids) == s,
          'unseen characters through byte pieces: %r -> %d pieces' % (s, len(pieces)))

tot = same = 0
diffs = []
for line in open(words, encoding='utf-8'):
    count, pcs = line.rstrip('\n').split('\t', 1)
    pcs = pcs.split(' ')
    if pcs == ['\u2581']:
        continue  # a lone space: decode() drops it as the dummy prefix
    got = sp.encode(sp.decode_pieces(pcs), out_type=str)
    tot += 1
    if got == pcs: same += 1
    elif len(diffs) < 5: diffs.append((pcs, got))
for d in diffs: print('     trainer %s, sentencepiece %s' % d)
check(tot >= 4000 and tot - same <= tot // 1000,
      "SentencePiece reproduces the trainer's segmentation of %d/%d training words" % (same, tot))

n_bytes = sum(len(p.encode()) for p in paras)
ours = sum(len(sp.encode(p)) for p in paras) / n_bytes
msg = 'tokens per byte on the held-out text: ours (vocab 2048, 3 MB of Brown) %.4f' % ours
if os.path.exists(llama):
    ll = spm.SentencePieceProcessor(model_file=llama)
    msg += ', Llama 2 (32000) %.4f' % (sum(len(ll.encode(p)) for p in paras) / n_bytes)
check(ours < 0.35, msg)
sys.exit(1 if bad else 0)
EOF
rc=$?
[ $rc -eq 0 ] || failures=$((failures + 1))

# cli-tt-04: our own .model reader and encoder (rlhf tokenize) give SentencePiece's ids on the
# trained model, line by line over the held-out text
"$PY" - "$MODEL" "$TMP/heldout.txt" >"$TMP/expect.tsv" <<'EOF'
import sys
import sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
for line in open(sys.argv[2], encoding='utf-8').read().split('\n')[:150]:
    if line:
        print(line + '\t' + ' '.join(map(str, sp.encode(line))))
EOF
n=0 bad=0
while IFS=$'\t' read -r text ids; do
    got=$("$BIN" tokenize --tokenizer "$MODEL" -- "$text") || got="(exit $?)"
    n=$((n + 1))
    [ "$got" = "$ids" ] || { bad=$((bad + 1)); [ $bad -le 3 ] && echo "  differs: '$text': ours '$got' vs '$ids'"; }
done <"$TMP/expect.tsv"
if [ $n -gt 0 ] && [ $bad -eq 0 ]; then echo "ok   our encoder equals SentencePiece on $n held-out lines"
else fail "our encoder differs from SentencePiece on $bad of $n held-out lines"; fi
finish
