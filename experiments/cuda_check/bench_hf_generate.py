#!/usr/bin/env python3
"""bench_hf_generate.py: Hugging Face transformers `generate` on a random Llama config, the
baseline of `rlhf bench sample --device cuda` (issue 9: batched sampling >= 5x HF generate).

Same shape flags as rlhf's bench (--dim --layers --heads --kv-heads --hidden --vocab --seq), K
sequences (--k) of --steps new tokens each after a prompt of --prompt-len random ids (BOS first),
sampling at temperature 1 with top-k off (top_k=0) and top-p 1, no early stop (min_new_tokens),
KV cache on, weights random (N(0, 0.02)), dtype bf16 by default. Prints one line:
    hf_generate: <tokens> tokens in <s> s: <tok/s> tok/s (...)
Needs torch with CUDA and transformers (the GPU machine has both; this CPU machine has no
transformers). Not run by ctest.
"""
import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=0, help="0 = heads")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--seed", type=int, default=1337)
    a = ap.parse_args()
    try:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError as e:
        print(f"hf_generate: SKIP ({e})")
        return 77
    if not torch.cuda.is_available():
        print("hf_generate: SKIP (no CUDA device)")
        return 77
    torch.manual_seed(a.seed)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=a.dim, intermediate_size=a.hidden,
                      num_hidden_layers=a.layers, num_attention_heads=a.heads,
                      num_key_value_heads=a.kv_heads or a.heads, max_position_embeddings=a.seq,
                      rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(dtype).eval()
    g = torch.Generator(device="cuda").manual_seed(a.seed)
    prompt = torch.randint(3, a.vocab, (a.k, a.prompt_len), device="cuda", generator=g)
    prompt[:, 0] = 1
    attn = torch.ones_like(prompt)
    kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=a.steps,
              min_new_tokens=a.steps, use_cache=True, pad_token_id=0, attention_mask=attn)
    with torch.no_grad():
        model.generate(prompt, **dict(kw, max_new_tokens=4, min_new_tokens=4))  # warm-up
        torch.cuda.synchronize()
        t0 = time.time()
        out = model.generate(prompt, **kw)
        torch.cuda.synchronize()
        dt = time.time() - t0
    new = (out.shape[1] - a.prompt_len) * a.k
    print(f"hf_generate: {new} tokens in {dt:.3f} s: {new / dt:.1f} tok/s (k={a.k}, "
          f"steps={a.steps}, prompt {a.prompt_len}, {a.dtype}, {torch.cuda.get_device_name()}, "
          f"torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
