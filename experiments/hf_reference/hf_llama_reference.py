#!/usr/bin/env python3
"""hf_llama_reference.py: an independent check that `rlhf convert` writes Hugging Face Llama
checkpoints that compute the same function as the llama2.c original, and the writer of the fixture
tests/fixtures/hf_stories260K_logits.bin that tests/test_hf.c checks our HF loader against.

Two forward passes are written here from the published model code, nothing taken from the C code:

  hf_forward   transformers' LlamaForCausalLM (modeling_llama.py) on an HF directory parsed by hand
               (safetensors: 8-byte little-endian header length, JSON header, raw data; shards via
               model.safetensors.index.json): LlamaRMSNorm (fp32 variance, weight * normed),
               rotate_half RoPE with cos/sin of cat(freqs, freqs) on the q_proj/k_proj outputs as
               stored, repeat_kv for GQA, causal softmax attention, SwiGLU MLP, lm_head (or the
               embedding when tie_word_embeddings).
  meta_forward Meta's / llama2.c's model.py on the llama2.c .bin (v0 header): the same network
               but RoPE rotating interleaved pairs (2i, 2i+1) (complex multiplication), and wq/wk
               rows in that interleaved order.

If our writer's q/k row permutation were wrong (or missing), the two would disagree. The script
converts ../shared/models/stories260K.bin with `rlhf convert` (or takes --hf-dir), runs both on a
fixed token sequence in float64 (or --fp32, transformers' default precision), requires them to
agree, and writes the HF-path logits as the fixture.

Fixture layout (little endian), tests/fixtures/hf_stories260K_logits.bin:
    4 bytes magic b"HFL1" | int32 T | int32 V | int32 tokens[T] | float32 logits[T*V] (row-major)

Usage (Debian's torch: /usr/bin/python3):
    /usr/bin/python3 experiments/hf_reference/hf_llama_reference.py                 # rewrites the fixture
    /usr/bin/python3 experiments/hf_reference/hf_llama_reference.py --hf-dir DIR    # use an existing HF dir
    /usr/bin/python3 experiments/hf_reference/hf_llama_reference.py --check         # compare, write nothing
Environment: RLHF_BIN (default build/rlhf), RLHF_SHARED (default ../shared).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(SRC, "tests", "fixtures", "hf_stories260K_logits.bin")
# A fixed sequence: BOS then ids spread over the 512-token vocabulary (12 positions).
TOKENS = [1, 400, 17, 263, 511, 2, 99, 300, 45, 128, 7, 460]


# ---- safetensors by hand ----------------------------------------------------------------------

def read_safetensors(path):
    """{name: np.ndarray (float32)} of one safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[b:end]
        dt = e["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F64":
            a = np.frombuffer(raw, dtype="<f8").astype(np.float32)
        else:
            raise SystemExit(f"{path}: tensor {name}: dtype {dt} not handled")
        out[name] = a.reshape(e["shape"]).copy()
    return out


def read_hf_dir(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        sd = read_safetensors(single)
    else:
        with open(os.path.join(d, "model.safetensors.index.json")) as f:
            wm = json.load(f)["weight_map"]
        sd = {}
        for shard in sorted(set(wm.values())):
            sd.update(read_safetensors(os.path.join(d, shard)))
    return cfg, sd


# ---- transformers' Llama forward -----------------------------------------------------------------

def hf_rmsnorm(x, w, eps):
    # LlamaRMSNorm: variance in fp32 (here: the working precision), weight * normed input
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def repeat_kv(x, n_rep):
    # (NKV, T, HS) -> (NKV * n_rep, T, HS): each kv head serves n_rep consecutive query heads
    nkv, t, hs = x.shape
    return x[:, None].expand(nkv, n_rep, t, hs).reshape(nkv * n_rep, t, hs)


def hf_forward(cfg, sd, tokens, dt):
    C = cfg["hidden_size"]
    NH = cfg["num_attention_heads"]
    NKV = cfg.get("num_key_value_heads", NH)
    HS = C // NH
    L = cfg["num_hidden_layers"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    W = {k: torch.tensor(v, dtype=dt) for k, v in sd.items()}
    T = len(tokens)
    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]               # (T, C)
    inv_freq = 1.0 / (theta ** (torch.arange(0, HS, 2, dtype=torch.int64).to(dt) / HS))
    freqs = torch.outer(torch.arange(T, dtype=dt), inv_freq)                 # (T, HS/2)
    emb = torch.cat((freqs, freqs), dim=-1)                                  # (T, HS)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf"), dtype=dt).triu(1)
    for l in range(L):
        p = f"model.layers.{l}."
        h = hf_rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(T, NH, HS).transpose(0, 1)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).view(T, NKV, HS).transpose(0, 1)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(T, NKV, HS).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, NH // NKV)
        v = repeat_kv(v, NH // NKV)
        att = torch.softmax(q @ k.transpose(1, 2) / (HS ** 0.5) + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + o @ W[p + "self_attn.o_proj.weight"].T
        h = hf_rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(h @ W[p + "mlp.gate_proj.weight"].T)
        x = x + (g * (h @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    x = hf_rmsnorm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.T                                                        # (T, V)


# ---- Meta / llama2.c forward on the .bin ------------------------------------------------------------

def read_llama2c_v0(path):
    with open(path, "rb") as f:
        blob = f.read()
    dim, hidden, L, NH, NKV, V, seq = struct.unpack("<7i", blob[:28])
    shared = V > 0
    V = abs(V)
    HS = dim // NH
    a = np.frombuffer(blob[28:], dtype="<f4")
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        t = a[off:off + n].reshape(shape)
        off += n
        return t
    w = dict(tok=take(V, dim), attn_norm=take(L, dim), wq=take(L, NH * HS, dim),
             wk=take(L, NKV * HS, dim), wv=take(L, NKV * HS, dim), wo=take(L, dim, NH * HS),
             ffn_norm=take(L, dim), w1=take(L, hidden, dim), w2=take(L, dim, hidden),
             w3=take(L, hidden, dim), norm=take(dim))
    take(seq, HS // 2)
    take(seq, HS // 2)
    w["cls"] = w["tok"] if shared else take(V, dim)
    cfg = dict(dim=dim, NH=NH, NKV=NKV, L=L, V=V)
    return cfg, w


def meta_forward(cfg, w, tokens, dt, eps=1e-5, theta=10000.0):
    W = {k: torch.tensor(np.array(v), dtype=dt) for k, v in w.items()}
    C, NH, NKV, L = cfg["dim"], cfg["NH"], cfg["NKV"], cfg["L"]
    HS = C // NH
    T = len(tokens)
    x = W["tok"][torch.tensor(tokens)]
    i = torch.arange(HS // 2, dtype=dt)
    ang = torch.arange(T, dtype=dt)[:, None] * theta ** (-2.0 * i / HS)      # (T, HS/2)
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]

    def rope(z, heads):                                                      # (T, heads*HS)
        z = z.view(T, heads, HS // 2, 2)
        z0, z1 = z[..., 0], z[..., 1]
        return torch.stack((z0 * c - z1 * s, z0 * s + z1 * c), dim=-1).view(T, heads, HS)

    def norm(z, g):
        return z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + eps) * g

    mask = torch.full((T, T), float("-inf"), dtype=dt).triu(1)
    for l in range(L):
        h = norm(x, W["attn_norm"][l])
        q = rope(h @ W["wq"][l].T, NH).transpose(0, 1)
        k = rope(h @ W["wk"][l].T, NKV).transpose(0, 1)
        v = (h @ W["wv"][l].T).view(T, NKV, HS).transpose(0, 1)
        kv_of = torch.arange(NH) // (NH // NKV)
        att = torch.softmax(q @ k[kv_of].transpose(1, 2) / HS ** 0.5 + mask, dim=-1)
        x = x + (att @ v[kv_of]).transpose(0, 1).reshape(T, C) @ W["wo"][l].T
        h = norm(x, W["ffn_norm"][l])
        x = x + (torch.nn.functional.silu(h @ W["w1"][l].T) * (h @ W["w3"][l].T)) @ W["w2"][l].T
    return norm(x, W["norm"]) @ W["cls"].T


def write_fixture(path, tokens, logits):
    T, V = logits.shape
    with open(path, "wb") as f:
        f.write(b"HFL1")
        f.write(struct.pack("<2i", T, V))
        f.write(struct.pack(f"<{T}i", *tokens))
        f.write(logits.astype("<f4").tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hf-dir", help="an HF dir converted from stories260K.bin (default: convert)")
    ap.add_argument("--bin", help="llama2.c checkpoint (default ../shared/models/stories260K.bin)")
    ap.add_argument("--out", default=FIXTURE)
    ap.add_argument("--fp32", action="store_true", help="compute in float32 (default float64)")
    ap.add_argument("--check", action="store_true", help="compare only, write no fixture")
    a = ap.parse_args()
    shared = os.environ.get("RLHF_SHARED", os.path.join(SRC, "..", "shared"))
    binp = a.bin or os.path.join(shared, "models", "stories260K.bin")
    if not os.path.exists(binp):
        print(f"{binp} not found (set RLHF_SHARED)", file=sys.stderr)
        return 2
    dt = torch.float32 if a.fp32 else torch.float64
    with tempfile.TemporaryDirectory() as tmp:
        hf = a.hf_dir
        if not hf:
            rlhf = os.environ.get("RLHF_BIN", os.path.join(SRC, "build", "rlhf"))
            hf = os.path.join(tmp, "stories260K_hf")
            subprocess.run([rlhf, "convert", binp, hf, "-q"], check=True)
        cfg, sd = read_hf_dir(hf)
        with torch.no_grad():
            got = hf_forward(cfg, sd, TOKENS, dt)
            mcfg, w = read_llama2c_v0(binp)
            ref = meta_forward(mcfg, w, TOKENS, dt)
    diff = (got - ref).abs().max().item()
    scale = ref.abs().max().item()
    print(f"HF (rotate_half, permuted q/k) vs Meta (interleaved) forward, {dt}: "
          f"max |diff| {diff:.3g}, max |logit| {scale:.3g}, {len(TOKENS)} positions x "
          f"{got.shape[1]} vocab")
    tol = 1e-10 if dt == torch.float64 else 1e-4
    if not diff <= tol * max(scale, 1.0):
        print("FAIL: the converted checkpoint does not compute the original function",
              file=sys.stderr)
        return 1
    if a.check:
        return 0
    write_fixture(a.out, TOKENS, got.float().numpy())
    print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
