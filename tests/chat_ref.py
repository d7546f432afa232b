#!/usr/bin/env python3
"""Reference token ids for the Llama 2-Chat template test in tests/test_ds_data.c.

Re-implements Meta's llama/generation.py chat_completion rendering (system folded into the first
user message, one SentencePiece encode per (user, answer) pair with BOS/EOS ids, .strip() on the
messages) with the real sentencepiece library and Meta's tokenizer.model, and prints the ids.
Usage: python3 tests/chat_ref.py ../shared/models/llama2_tokenizer.model"""
import sys
import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"

def render(dialog):
    if dialog[0]["role"] == "system":
        dialog = [{"role": dialog[1]["role"],
                   "content": B_SYS + dialog[0]["content"] + E_SYS + dialog[1]["content"]}] + dialog[2:]
    ids = []
    for user, answer in zip(dialog[::2], dialog[1::2]):
        ids += [sp.bos_id()] + sp.encode(f"{B_INST} {user['content'].strip()} {E_INST} {answer['content'].strip()} ") + [sp.eos_id()]
    if dialog[-1]["role"] == "user":
        ids += [sp.bos_id()] + sp.encode(f"{B_INST} {dialog[-1]['content'].strip()} {E_INST}")
    return ids

# the dialogue of test_ds_data.c (keep in sync)
d = [{"role": "system", "content": "You are a terse assistant. Answer in one line."},
     {"role": "user", "content": "What is the capital of France?"},
     {"role": "assistant", "content": "Paris."},
     {"role": "user", "content": "  And of Germany?  "},
     {"role": "assistant", "content": " Berlin, of course. "},
     {"role": "user", "content": "Which caf\u00e9 is best in 2024 \u2014 the 1st?"},
     {"role": "assistant", "content": "I can't say; try Caf\u00e9 de Flore (\u20ac4)."}]
print("full:", ", ".join(map(str, render(d))))
print("prompt:", ", ".join(map(str, render(d[:-1]))))
