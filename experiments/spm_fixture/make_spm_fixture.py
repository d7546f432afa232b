#!/usr/bin/python3
r"""make_spm_fixture.py: SentencePiece's own ids for a few hundred hard strings, as a test fixture.

Run with Debian's python3 (python3-sentencepiece 0.1.97):
    /usr/bin/python3 experiments/spm_fixture/make_spm_fixture.py [--model ../shared/models/llama2_tokenizer.model]
        [--out tests/fixtures/spm_llama2_cases.txt]

Writes one case per line, fields separated by tabs (tests/test_spm.c reads it):
    E <text> <ids> <decoded>    sp.encode(text) and sp.decode(those ids)
    D <ids> <decoded>           sp.decode(ids) for random id sequences (byte pieces, controls, UNK)
<text>/<decoded> are escaped: backslash as \\, tab \t, newline \n, carriage return \r, and every
other control byte, DEL and every byte that is not part of valid UTF-8 as \xHH; valid non-ASCII
UTF-8 stays as is. <ids> are space-separated; "-" is the empty list. The text is passed to
SentencePiece as bytes, so the invalid-UTF-8 cases show what SentencePiece does with them.
The random cases use a fixed seed: the file is reproducible.

With --small it also trains two 600-piece BPE models on the first 300 KB of tiny_shakespeare
(identity normalizer) that exercise what the Llama 2 model does not: spm_small_nobf.model
(no byte fallback: unknown characters -> UNK; remove_extra_whitespaces) and spm_small_ud.model
(byte fallback, USER_DEFINED "<X>" and "[INST]", CONTROL "<ctl>"), each with a cases file
spm_small_{nobf,ud}.txt in the same format. (SentencePiece's trainer is multi-threaded; the
models may differ between runs, so the cases file always goes with its model.)
"""
import argparse
import random
import sys

import sentencepiece as spm


def utf8_len(b, i):
    """Length of the valid UTF-8 character at b[i:], 0 if invalid (same rules as spm.c)."""
    try:
        c = b[i]
        for n in (1, 2, 3, 4):
            if i + n <= len(b):
                try:
                    b[i:i + n].decode("utf-8")
                    return n
                except UnicodeDecodeError:
                    pass
        return 0
    except IndexError:
        return 0


def escape(b):
    out = []
    i = 0
    while i < len(b):
        n = utf8_len(b, i)
        c = b[i]
        if n == 1:
            if c == 0x5C:
                out.append("\\\\")
            elif c == 0x09:
                out.append("\\t")
            elif c == 0x0A:
                out.append("\\n")
            elif c == 0x0D:
                out.append("\\r")
            elif c < 0x20 or c == 0x7F:
                out.append("\\x%02X" % c)
            else:
                out.append(chr(c))
        elif n > 1:
            s = b[i:i + n].decode("utf-8")
            cp = ord(s)
            # C1 controls and line/paragraph separators are escaped so each case is one line
            if 0x80 <= cp <= 0x9F or cp in (0x2028, 0x2029, 0x85):
                out.append("".join("\\x%02X" % x for x in b[i:i + n]))
            else:
                out.append(s)
        else:
            out.append("\\x%02X" % c)
            n = 1
        i += n
    return "".join(out)


HARD = [
    "", " ", "  ", "   ", "\n", "\n\n", "\t", " \t \n ", "a", "A", ".", "x y", "a  b", "a   b",
    "Hello world", "Hello World", "hello world", " Hello world", "Hello world ", "  Hello  world  ",
    "Hello\nworld", "Hello\tworld", "Hello\r\nworld\r\n", "line one\nline two\n\nline four",
    "trailing spaces   ", "   leading spaces", "\n leading newline", "trailing newline\n",
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "The quick brown fox jumps over the lazy dog.",
    "0", "1", "12", "123", "1234567890", "3.14159", "-42", "1,000,000", "2023-07-18", "v1.2.3",
    "0x1F", "1e-10", "12:30pm", "$100.99", "99%", "ab12cd34", "a1b2c3", "x² + y³ = z⁴", "½ ¼ ¾",
    "café", "naïve", "résumé", "Ñandú", "straße", "Zürich", "Ångström", "São Paulo", "crème brûlée",
    "cafe\u0301 (decomposed)", "n\u0303", "e\u0301\u0301\u0301", "Ä Ö Ü ä ö ü ß",
    "Привет, мир!", "Γειά σου κόσμε", "Ελληνικά", "Україна", "Здравствуйте",
    "你好世界", "我爱北京天安门", "日本語のテキスト", "こんにちは", "カタカナ", "한국어 텍스트",
    "안녕하세요", "中文 English mixed 混合", "繁體中文", "𠀀𠀁 (CJK ext B)",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "ሰላም", "Xin chào thế giới",
    "😀", "😀😀😀", "👍🏽", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇺🇸🇫🇷🇯🇵", "❤️", "☺", "🎉 party 🎊",
    "emoji at end 🚀", "🚀 emoji at start", "a😀b😀c", "🧑‍🤝‍🧑", "1️⃣2️⃣", "©®™",
    "\x01", "\x01\x02\x03", "\x1b[31mred\x1b[0m", "\x7f", "bell\x07", "\x0b\x0c", "null-free\x1f",
    "\u0080\u0085\u009f", "\ufeffBOM", "zero\u200bwidth", "\u200d", "\u2028\u2029", "\u00a0nbsp\u00a0",
    "\u3000ideographic space", "\u2581", "a\u2581b", "\u2581\u2581 x", "\ufffd", "\uffff",
    "\U0010ffff", "\ue000 private", "\U000f0000", "\U0001d11e music", "\U0001f9ff",
    "[INST] Hello [/INST]", "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHi [/INST]",
    "<s>", "</s>", "<unk>", "<pad>", "<0x41>", "<0x0A>", "<s> </s> <unk>", "<<SYS>>", "<</SYS>>",
    "[/INST] Sure! Here is an answer. </s><s>[INST] Thanks [/INST]",
    "\n\nHuman: Can you help me?\n\nAssistant: Sure!", "### Instruction:\n### Response:",
    "def f(x):\n    return x * 2\n", "int main(void) { return 0; }", "if (a && b || !c) {}",
    "https://example.com/path?query=1&b=2#frag", "user@example.com", "C:\\Windows\\System32",
    "\\n is not a newline", "tab\\there", "quote \" and ' and `", "{\"json\": [1, 2, {\"a\": null}]}",
    "<html><body><p>Hi</p></body></html>", "SELECT * FROM t WHERE x = 'y';",
    "∀x ∈ ℝ: x² ≥ 0", "∑_{i=1}^{n} i = n(n+1)/2", "α β γ δ ε", "→ ← ↑ ↓ ⇒", "•·…—–",
    "ALL CAPS TEXT", "MiXeD cAsE", "don't won't it's", "re-enter co-operate", "e.g. i.e. etc.",
    "!!!???...", "---", "___", "***", "===", "~~~", "^^^", "||", "&&", "@#$%^&*()",
    "a" * 100, "ab" * 100, " " * 50, "\n" * 30, "😀" * 40, "1" * 64, "the " * 60,
    "x" + " " * 17 + "y", "\t" * 12, "." * 99,
]

# fragments for random mixes
FRAGMENTS = [
    "the", " the", "and", " of", "ing", "tion", " a", "I", "you", "Hello", "world", "Lily",
    " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", ",", ".", "!", "?", ":", ";", "'", "\"", "-",
    "(", ")", "[", "]", "{", "}", "<", ">", "/", "\\", "_", "*", "#", "@", "&", "%", "$",
    "0", "1", "7", "42", "2023", "3.14", "é", "ü", "ñ", "ç", "ß", "ø", "å", "œ", "e\u0301",
    "中", "文", "日本", "語", "한", "국", "ü", "ж", "Д", "λ", "Ω", "ع", "ש", "न", "ก",
    "😀", "👍", "🏽", "\u200d", "❤", "\ufe0f", "🇺", "🇸", "🚀", "🎉", "\u2581", "\ufffd",
    "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<s>", "</s>", "<unk>", "<0x41>",
    "\x01", "\x1b", "\x7f", "\u0085", "\u00a0", "\u200b", "\ufeff", "\U0010ffff", "\ue000",
]
INVALID = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc3", b"\xe2\x82", b"\xe0\x80\x80",
           b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xf5",
           b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff", b"\xf0\x9f\x98", b"\xe4\xbd"]


def random_codepoint(rng):
    ranges = [(0x20, 0x7E), (0xA0, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x2000, 0x206F), (0x2190, 0x22FF), (0x3040, 0x30FF),
              (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xF8FF), (0x1F300, 0x1FAFF),
              (0x20000, 0x2A6DF), (0xF0000, 0x10FFFF)]
    lo, hi = rng.choice(ranges)
    return chr(rng.randint(lo, hi))


def random_case(rng, k):
    kind = k % 4
    parts = []
    n = rng.randint(1, 40)
    for _ in range(n):
        r = rng.random()
        if kind == 3 and r < 0.1:
            parts.append(rng.choice(INVALID))
        elif r < 0.65:
            parts.append(rng.choice(FRAGMENTS).encode())
        elif r < 0.85:
            parts.append(random_codepoint(rng).encode("utf-8", "surrogatepass"))
        else:
            word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                           for _ in range(rng.randint(1, 12)))
            parts.append(word.encode())
    return b"".join(parts)


def write_cases(sp, cases, path, header, decode_lines=()):
    lines = header[:]
    n_rt_fail = 0
    for b in cases:
        ids = sp.encode(b)
        dec = sp.decode(ids).encode("utf-8")
        try:
            valid = b.decode("utf-8")
        except UnicodeDecodeError:
            valid = None
        if valid is not None and "\u2581" not in valid and dec != b:
            n_rt_fail += 1
        lines.append("E\t%s\t%s\t%s" % (escape(b), " ".join(map(str, ids)) or "-", escape(dec)))
    for ids in decode_lines:
        dec = sp.decode(ids).encode("utf-8")
        lines.append("D\t%s\t%s" % (" ".join(map(str, ids)) or "-", escape(dec)))
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return n_rt_fail


def make_small(args):
    import gzip
    import os
    import tempfile
    corpus = os.path.join(os.path.dirname(args.model), "..", "data", "corpus",
                          "tiny_shakespeare.txt.gz")
    text = gzip.open(corpus, "rt", encoding="utf-8").read()[:300000]
    fixdir = os.path.dirname(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "c.txt")
        with open(src, "w", encoding="utf-8") as f:
            f.write(text)
        for name, extra in [("nobf", dict(byte_fallback=False, remove_extra_whitespaces=True)),
                            ("ud", dict(byte_fallback=True, remove_extra_whitespaces=False,
                                        user_defined_symbols=["<X>", "[INST]"],
                                        control_symbols=["<ctl>"]))]:
            prefix = os.path.join(tmp, name)
            spm.SentencePieceTrainer.train(input=src, model_prefix=prefix, vocab_size=600,
                                           model_type="bpe", normalization_rule_name="identity",
                                           character_coverage=1.0, minloglevel=2,
                                           num_threads=1, **extra)
            model = os.path.join(fixdir, "spm_small_%s.model" % name)
            with open(prefix + ".model", "rb") as f, open(model, "wb") as g:
                g.write(f.read())
            sp = spm.SentencePieceProcessor(model_file=model)
            rng = random.Random(args.seed + 1)
            frags = ["the", " ", "  ", "\u00e9", "\u4e2d", "<X>", "[INST]", "ab", "\n", "Q", "zz",
                     "\u20ac", "\U0001f600", "<ctl>", "'", "\t", "KING", ",", "\u0436"]
            cases = [c.encode() for c in ["", " ", "Hello world", "  lots   of   space  ",
                                          "\u0436\u20ac unknown \u4e2d\u6587\u4e2d x",
                                          "[INST] <X> hi<X>[INST]", "<ctl> ok", "\t tab"]]
            for _ in range(150):
                cases.append("".join(rng.choice(frags) for _ in range(rng.randint(0, 15))).encode())
            cases += INVALID[:6]
            V = sp.get_piece_size()
            dl = [[rng.randrange(V) for _ in range(rng.randint(0, 10))] for _ in range(40)]
            path = os.path.join(fixdir, "spm_small_%s.txt" % name)
            write_cases(sp, cases, path,
                        ["# SentencePiece %s ids for spm_small_%s.model (experiments/"
                         "spm_fixture/make_spm_fixture.py --small)." % (spm.__version__, name)], dl)
            print("%s: %d encode cases, 40 decode cases" % (path, len(cases)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="../shared/models/llama2_tokenizer.model")
    ap.add_argument("--out", default="tests/fixtures/spm_llama2_cases.txt")
    ap.add_argument("--seed", type=int, default=20240607)
    ap.add_argument("--small", action="store_true",
                    help="also train and write the two small test models (see the top)")
    args = ap.parse_args()
    if args.small:
        make_small(args)
    sp = spm.SentencePieceProcessor(model_file=args.model)
    rng = random.Random(args.seed)

    cases = [s.encode("utf-8") for s in HARD]
    cases += INVALID
    cases += [b"ab" + x + b"cd" for x in INVALID]
    cases += [b" " + x for x in INVALID] + [x + b" " + x for x in INVALID]
    for k in range(400):
        cases.append(random_case(rng, k))
    # a long input: 12 KB of mixed text (the encoder must stay fast and exact)
    long_parts = []
    while sum(len(p) for p in long_parts) < 12000:
        long_parts.append(random_case(rng, rng.randint(0, 2)))
    cases.append(b"".join(long_parts))

    lines = ["# SentencePiece %s ids for %s (made by experiments/spm_fixture/make_spm_fixture.py, seed %d)."
             % (spm.__version__, args.model.split("/")[-1], args.seed),
             "# E<TAB>text<TAB>ids<TAB>decode(ids); D<TAB>ids<TAB>decode(ids). Escapes: \\\\ \\t \\n "
             "\\r \\xHH; ids '-' = none."]
    n_rt_fail = 0
    for b in cases:
        ids = sp.encode(b)
        dec = sp.decode(ids).encode("utf-8")
        try:
            valid = b.decode("utf-8")
        except UnicodeDecodeError:
            valid = None
        if valid is not None and "\u2581" not in valid and dec != b:
            n_rt_fail += 1
            print("note: SentencePiece does not round-trip %r -> %r" % (b[:40], dec[:40]),
                  file=sys.stderr)
        lines.append("E\t%s\t%s\t%s" % (escape(b), " ".join(map(str, ids)) or "-", escape(dec)))

    # decode cases: random id sequences over byte pieces, controls, UNK and normal pieces
    V = sp.get_piece_size()
    for k in range(120):
        ids = []
        for _ in range(rng.randint(0, 12)):
            r = rng.random()
            if r < 0.35:
                ids.append(3 + rng.choice([0x20, 0x41, 0x0A, 0xE2, 0x96, 0x81, 0xC3, 0xA9, 0xF0,
                                           0x9F, 0x98, 0x80, 0xFF, 0xED, 0xA0, 0x00 + 0x7F]))
            elif r < 0.45:
                ids.append(rng.choice([0, 1, 2]))
            elif r < 0.6:
                ids.append(rng.choice([29871, 259, 1678, 13, 15043, 3186]))
            else:
                ids.append(rng.randrange(259, V))
        dec = sp.decode(ids).encode("utf-8")
        lines.append("D\t%s\t%s" % (" ".join(map(str, ids)) or "-", escape(dec)))

    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d encode cases, 120 decode cases, %d bytes; %d valid strings SentencePiece does "
          "not round-trip" % (args.out, len(cases), sum(len(l) + 1 for l in lines), n_rt_fail))


if __name__ == "__main__":
    main()
