#!/usr/bin/env python3
"""Writes the small dataset-reader fixtures under tests/data/broken/ (one failure kind per file)
and tests/data/good/. Run from the repository root; the outputs are committed, so this is only
needed to change them. Each broken file holds good records around exactly one bad one (or damage
that ends the file) so that tests/test_ds.c can check the error line and what skip mode keeps."""
import gzip, json, os

B = "tests/data/broken"
G = "tests/data/good"
os.makedirs(B, exist_ok=True)
os.makedirs(G, exist_ok=True)

def hh(q, a, b):
    return json.dumps({"chosen": f"\n\nHuman: {q}\n\nAssistant: {a}",
                       "rejected": f"\n\nHuman: {q}\n\nAssistant: {b}"})

def w(name, data):
    with open(os.path.join(B, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

good = [hh(f"Question {i}?", f"Answer {i}.", f"Other {i}.") for i in range(6)]
L = lambda rows: "\n".join(rows) + "\n"

w("hh_malformed_json.jsonl", L([good[0], '{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: yo", "rejected": ', good[1]]))
w("hh_bad_utf8.jsonl", L([good[0], good[1]]).encode() + b'{"chosen": "\\n\\nHuman: caf\xe9\\n\\nAssistant: x", "rejected": "\\n\\nHuman: caf\xe9\\n\\nAssistant: y"}\n' + (good[2] + "\n").encode())
w("hh_nul_byte.jsonl", L([good[0]]).encode() + b'{"chosen": "\\n\\nHuman: a\x00b\\n\\nAssistant: x", "rejected": "\\n\\nHuman: a\\n\\nAssistant: y"}\n' + L([good[1], good[2]]).encode())
w("hh_escaped_nul.jsonl", L([good[0], '{"chosen": "\\n\\nHuman: a\\u0000b\\n\\nAssistant: x", "rejected": "\\n\\nHuman: a\\n\\nAssistant: y"}', good[1]]))
w("hh_missing_field.jsonl", L([good[0], good[1], good[2], json.dumps({"chosen": "\n\nHuman: q\n\nAssistant: a"})]))
w("hh_wrong_type.jsonl", L([good[0], json.dumps({"chosen": 5, "rejected": "\n\nHuman: q\n\nAssistant: a"}), good[1]]))
w("hh_no_assistant.jsonl", L([good[0], good[1], json.dumps({"chosen": "\n\nHuman: only a question", "rejected": "\n\nHuman: only a question"})]))
w("hh_not_transcript.jsonl", L([json.dumps({"chosen": "just text", "rejected": "other text"}), good[0]]))
w("hh_long_line.jsonl", L([good[0], hh("x" * 3000, "a", "b"), good[1]]))  # read with a 1 KiB limit
w("empty.jsonl", "")
w("blank_lines_only.jsonl", "\n  \n\n")
# truncated gzip: compress 40 good lines, keep the first half of the bytes
data = gzip.compress(L([hh(f"Question number {i} about something fairly long {i*i}?", f"Answer {i} " * 8, f"Other {i} " * 8) for i in range(40)]).encode(), mtime=0)
w("hh_truncated.jsonl.gz", data[: len(data) // 2])
w("csv_unbalanced_quote.csv", 'prompt,chosen,rejected\n"q1","a1","b1"\nq2,"a2 is never closed,b2\nq3,a3,b3\n')
w("csv_stray_quote.csv", 'prompt,chosen,rejected\nq1,a1,b1\nq2,a"2,b2\nq3,a3,b3\n')
w("csv_missing_column.csv", "prompt,chosen\nq1,a1\n")
w("csv_field_count.csv", "prompt,chosen,rejected\nq1,a1,b1\nq2,a2\nq3,a3,b3\n")
w("csv_bad_utf8.csv", b"prompt,chosen,rejected\nq1,a1,b1\nq2,\xc3\x28,b2\nq3,a3,b3\n")
w("csv_bad_rating.csv", "prompt,chosen,rejected,rating\nq1,a1,b1,better\nq2,a2,b2,much better\nq3,a3,b3,slightly\n")
w("csv_multiline_then_bad.csv", 'prompt,unsafe\n"line one\nline two",1\nq2,maybe\nq3,0\n')
w("csv_empty.csv", "")
w("csv_header_only.csv", "prompt,chosen,rejected\n")
w("sharegpt_bad_role.json", json.dumps([
    {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
    {"id": "b", "conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "beep"}]},
    {"id": "c", "conversations": [{"from": "human", "value": "bye"}, {"from": "gpt", "value": "ciao"}]}], indent=1))
w("sharegpt_not_alternating.json", json.dumps([
    {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "human", "value": "again"}]},
    {"id": "b", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}], indent=1))
w("sharegpt_unterminated.json", json.dumps([
    {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
    {"id": "b", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}], indent=1)[:-40])
w("sharegpt_bad_element.json", '[\n {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},\n {"id": "b", "conversations": [{"from": "human", "value": "hi"} {"from": "gpt", "value": "x"}]},\n {"id": "c", "conversations": [{"from": "human", "value": "bye"}, {"from": "gpt", "value": "ciao"}]}\n]\n')
w("nemo_empty_conversation.jsonl", L([
    json.dumps({"system": "", "mask": "User", "conversations": [{"from": "User", "value": "q"}, {"from": "Assistant", "value": "a"}]}),
    json.dumps({"system": "", "mask": "User", "conversations": []})]))
w("mtbench_wrong_type.jsonl", L([json.dumps({"question_id": 1, "category": "x", "turns": ["a", "b"]}),
                                 json.dumps({"question_id": 2, "category": "x", "turns": "not a list"}),
                                 json.dumps({"question_id": 3, "category": "x", "turns": ["c"]})]))
w("prompts_nested_bad_leaf.json", '{\n  "Topic": {\n    "Sub": [\n      "q1",\n      42,\n      "q2"\n    ]\n  }\n}\n')
w("prompts_list_bad_item.json", '[\n  "q1",\n  null,\n  "q2"\n]\n')
w("prompts_trailing_garbage.json", '[\n  "q1",\n  "q2"\n]\n]\n')

# good fixtures: HH splitting rules (merging, same responses, differing contexts, bare start)
rows = [
    good[0],
    json.dumps({"chosen": "\n\nHuman: two\n\nAssistant: A1\n\nHuman: three?\n\nAssistant:  yes ",
                "rejected": "\n\nHuman: two\n\nAssistant: A1\n\nHuman: three?\n\nAssistant: no"}),
    json.dumps({"chosen": "\n\nHuman: q\n\nAssistant: same", "rejected": "\n\nHuman: q\n\nAssistant: same "}),
    json.dumps({"chosen": "\n\nHuman: q\n\nAssistant: A\n\nHuman: x\n\nAssistant: c",
                "rejected": "\n\nHuman: q\n\nAssistant: B\n\nHuman: x\n\nAssistant: r"}),
    json.dumps({"chosen": "\n\nHuman: q\n\nAssistant: part one\n\nAssistant: part two",
                "rejected": "\n\nHuman: q\n\nAssistant: other"}),
    json.dumps({"chosen": "Human: bare start\n\nAssistant: c", "rejected": "Human: bare start\n\nAssistant: r"}),
]
with open(os.path.join(G, "hh_rules.jsonl"), "w") as f:
    f.write(L(rows))
with open(os.path.join(G, "pairs.csv"), "w") as f:
    f.write('prompt,system,chosen,rejected,rating,track,chosen_safe,rejected_safe\n'
            '"Say ""hi""",Be nice.,"Hi,\nthere",Go away,significantly,helpfulness,1,0\n'
            'q2,,a2,b2,,safety,,\n')
