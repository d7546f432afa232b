#!/usr/bin/env python3
"""check_transformers.py: proof on a machine that has Hugging Face transformers that a checkpoint
written by `rlhf convert` loads as LlamaForCausalLM and gives our logits.

Steps:
  1. convert ../shared/models/stories260K.bin to an HF directory with `rlhf convert` (or take
     --hf-dir, which must be such a conversion);
  2. LlamaForCausalLM.from_pretrained(dir, torch_dtype=float32) with output_loading_info: no
     missing, unexpected or mismatched keys allowed;
  3. run the token sequence of tests/fixtures/hf_stories260K_logits.bin and compare the logits
     with the fixture (written by experiments/hf_reference/hf_llama_reference.py and checked by
     tests/test_hf.c against our C model loaded from the same kind of directory):
     max |diff| <= 1e-4 * max(|logit|, 1).
  4. with --scalar-dir DIR (a scalar-head model written by rlhf_hf_write, e.g. by
     `rlhf convert` of a reward model), LlamaForSequenceClassification.from_pretrained must load
     it with no missing or unexpected keys and num_labels 1.

Exit status: 0 all checks passed, 1 a check failed, 2 transformers (or the inputs) unavailable.
Usage: python3 experiments/hf_reference/check_transformers.py [--hf-dir DIR] [--scalar-dir DIR]
Environment: RLHF_BIN (default build/rlhf), RLHF_SHARED (default ../shared).
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(SRC, "tests", "fixtures", "hf_stories260K_logits.bin")


def read_fixture(path):
    import numpy as np
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:4] != b"HFL1":
        raise SystemExit(f"{path}: not an HFL1 fixture")
    T, V = struct.unpack("<2i", blob[4:12])
    tokens = list(struct.unpack(f"<{T}i", blob[12:12 + 4 * T]))
    logits = np.frombuffer(blob[12 + 4 * T:], dtype="<f4").reshape(T, V)
    return tokens, logits


def loading_problems(info):
    return {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys",
                                                         "mismatched_keys", "error_msgs")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hf-dir")
    ap.add_argument("--scalar-dir")
    ap.add_argument("--fixture", default=FIXTURE)
    a = ap.parse_args()
    try:
        import torch
        import transformers
        from transformers import LlamaForCausalLM, LlamaForSequenceClassification
    except ImportError as e:
        print(f"check_transformers: Hugging Face transformers is not installed ({e}); "
              "run this on a machine with `pip install transformers torch`", file=sys.stderr)
        return 2
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    tokens, want = read_fixture(a.fixture)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        hf = a.hf_dir
        if not hf:
            shared = os.environ.get("RLHF_SHARED", os.path.join(SRC, "..", "shared"))
            binp = os.path.join(shared, "models", "stories260K.bin")
            rlhf = os.environ.get("RLHF_BIN", os.path.join(SRC, "build", "rlhf"))
            if not (os.path.exists(binp) and os.path.exists(rlhf)):
                print(f"check_transformers: need {binp} and {rlhf} (or --hf-dir)", file=sys.stderr)
                return 2
            hf = os.path.join(tmp, "stories260K_hf")
            subprocess.run([rlhf, "convert", binp, hf, "-q"], check=True)
        model, info = LlamaForCausalLM.from_pretrained(hf, torch_dtype=torch.float32,
                                                       output_loading_info=True)
        bad = loading_problems(info)
        if bad:
            print(f"FAIL: loading {hf}: {bad}")
            failures += 1
        model.eval()
        with torch.no_grad():
            got = model(torch.tensor([tokens])).logits[0].float().numpy()
        diff = float(abs(got - want).max())
        scale = max(float(abs(want).max()), 1.0)
        ok = diff <= 1e-4 * scale
        print(f"{'ok  ' if ok else 'FAIL'} LlamaForCausalLM logits vs fixture: max |diff| {diff:.3g} "
              f"(max |logit| {scale:.3g}, {len(tokens)} positions)")
        failures += not ok
        if a.scalar_dir:
            m, info = LlamaForSequenceClassification.from_pretrained(
                a.scalar_dir, torch_dtype=torch.float32, output_loading_info=True)
            bad = loading_problems(info)
            ok = not bad and m.config.num_labels == 1 and tuple(m.score.weight.shape)[0] == 1
            print(f"{'ok  ' if ok else 'FAIL'} LlamaForSequenceClassification loads "
                  f"{a.scalar_dir}: {bad or 'no missing/unexpected keys'}, "
                  f"num_labels {m.config.num_labels}")
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
