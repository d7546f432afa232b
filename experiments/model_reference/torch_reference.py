#!/usr/bin/env python3
"""torch_reference.py: an independent PyTorch (float64, autograd) implementation of the rlhf
Llama-2 trunk, used to write the fixture tests/fixtures/tiny_ref.bin that tests/test_model_ref.c
checks the C library against (llm.c style: the model checked against PyTorch on a fixed batch).

Usage (Debian's torch: run it with /usr/bin/python3):
    /usr/bin/python3 experiments/model_reference/torch_reference.py                 # (re)writes the fixture
    /usr/bin/python3 experiments/model_reference/torch_reference.py --out PATH      # elsewhere
    /usr/bin/python3 experiments/model_reference/torch_reference.py --check-greedy  # also replays the llama2.c
        greedy fixtures (tests/fixtures/greedy_*.txt) through this model on ../shared/models and
        reports the smallest top-1/top-2 logit margin along each sequence

The math (all of it written here, nothing taken from the C code):
    x = tok_emb[tokens]                                                  (B,T,C)
    per layer l:
        xn  = rmsnorm(x) * attn_norm[l]      rmsnorm(x) = x / sqrt(mean(x^2) + eps), eps 1e-5
        q = xn @ wq[l]^T (B,T,NH,HS); k = xn @ wk[l]^T, v = xn @ wv[l]^T (B,T,NKV,HS)
        RoPE on q and k: interleaved pairs (2i, 2i+1) of each head rotated by the angle
            t * theta^(-2i/HS), t = position 0..T-1, theta 10000
        query head h attends with kv head h // (NH/NKV); causal softmax(q.k / sqrt(HS))
        x = x + att @ wo[l]^T
        xn2 = rmsnorm(x) * ffn_norm[l]
        x = x + (silu(xn2 @ w1[l]^T) * (xn2 @ w3[l]^T)) @ w2[l]^T
    xf = rmsnorm(x) * norm
    LM head:     logits (B,T,V) = xf @ lm_head^T   (tok_emb^T when tied); logp = log_softmax[target]
    scalar head: values (B,T)   = xf @ score^T     (score is (1,C))

Parameters: ONE flat fp32 array in the order of rlhf.h's parameter table:
    tok_embeddings (V,C) | attn_norm (L,C) | wq (L,NH*HS,C) | wk (L,NKV*HS,C) | wv (L,NKV*HS,C) |
    wo (L,C,NH*HS) | ffn_norm (L,C) | w1 (L,FF,C) | w2 (L,C,FF) | w3 (L,FF,C) | norm (C) |
    head: lm_head (V,C) when LM and untied; score (1,C) when scalar; nothing when tied.
Random init: matrices N(0, 0.1), norm gains 1 + N(0, 0.1). The fp32-rounded parameters are what
is stored; the reference math runs in float64 on exactly those values, and its results are
rounded to fp32 only when written.

Fixture layout (little endian; i32 = int32, f32 = IEEE float32), tests/fixtures/tiny_ref.bin:
    header, 16 x i32:
        [0] magic 0x31464552 (the bytes "REF1")   [1] version 1
        [2] dim C  [3] hidden FF  [4] n_layer L  [5] n_head NH  [6] n_head_kv NKV  [7] vocab V
        [8] seq_len  [9] B  [10] T  [11] n_cases (4)  [12..15] 0
    2 x f32: norm_eps (1e-5), rope_theta (10000)
    then n_cases records, each:
        4 x i32: case id (0 'a', 1 'b', 2 'c', 3 'd'), head (0 LM, 1 scalar), tied (0/1), P
        i32 tokens[B*T]                 (row-major (B,T))
        i32 targets[B*T]                (case c: all -1, unused; case d: some -1)
        f32 weights[B*T]                (a,b: loss mask of 0/1; c: R; d: G)
        f32 params[P]                   (table order for this case's head)
        f32 objective                   (a,b: masked mean CE loss; c: sum(values*R);
                                         d: sum(logp*G))
        f32 out[B*T]                    (a,b,d: logp of targets, 0 where target < 0;
                                         c: values)
        f32 grads[P]                    (d objective / d params, table order)
Cases:
    a: LM head untied, objective = sum_i mask_i * (-logp_i) / sum(mask), mask has zeros
    b: the same with the LM head tied to tok_emb (no head tensor; P smaller)
    c: scalar head, objective = sum(values * R), R ~ N(0,1)
    d: LM head untied, objective = sum(logp * G), G ~ N(0,1), some targets = -1 (logp 0, no grad)
"""
import argparse
import os
import struct
import sys

import numpy as np
import torch

MAGIC = 0x31464552  # b"REF1" read as a little-endian int32
VERSION = 1

# The tiny GQA configuration of the fixture.
CFG = dict(dim=24, hidden=40, n_layer=2, n_head=6, n_kv=2, vocab=37, seq_len=16,
           norm_eps=1e-5, rope_theta=10000.0)
B, T = 2, 9


# ---- parameter table (order of rlhf.h) ------------------------------------------------------

def param_shapes(cfg, head, tied):
    """[(name, shape)] in table order; per-layer tensors carry a leading L axis."""
    C, FF, L, NH, NKV, V = (cfg["dim"], cfg["hidden"], cfg["n_layer"], cfg["n_head"],
                            cfg["n_kv"], cfg["vocab"])
    HS = C // NH
    shapes = [
        ("tok_emb", (V, C)),
        ("attn_norm", (L, C)),
        ("wq", (L, NH * HS, C)),
        ("wk", (L, NKV * HS, C)),
        ("wv", (L, NKV * HS, C)),
        ("wo", (L, C, NH * HS)),
        ("ffn_norm", (L, C)),
        ("w1", (L, FF, C)),
        ("w2", (L, C, FF)),
        ("w3", (L, FF, C)),
        ("norm", (C,)),
    ]
    if head == "lm" and not tied:
        shapes.append(("lm_head", (V, C)))
    elif head == "scalar":
        shapes.append(("score", (1, C)))
    return shapes


def random_params(cfg, head, tied, rng):
    """fp32 flat array: matrices N(0, 0.1), norm gains 1 + N(0, 0.1)."""
    parts = []
    for name, shape in param_shapes(cfg, head, tied):
        a = rng.standard_normal(shape) * 0.1
        if name.endswith("norm"):
            a = a + 1.0
        parts.append(a.astype(np.float32).ravel())
    return np.concatenate(parts)


def unflatten(flat, cfg, head, tied):
    """flat (P,) tensor -> dict of views with the table's shapes."""
    out, off = {}, 0
    for name, shape in param_shapes(cfg, head, tied):
        n = int(np.prod(shape))
        out[name] = flat[off:off + n].view(*shape)
        off += n
    assert off == flat.numel(), (off, flat.numel())
    return out


# ---- the model (float64) ------------------------------------------------------------------------

def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def rope(x, theta):
    """x (B,T,H,HS): rotate the interleaved pairs (2i, 2i+1) by t * theta^(-2i/HS)."""
    Bx, Tx, H, HS = x.shape
    i = torch.arange(HS // 2, dtype=x.dtype)
    inv = theta ** (-2.0 * i / HS)                        # (HS/2,)
    ang = torch.arange(Tx, dtype=x.dtype)[:, None] * inv  # (T, HS/2)
    cos = torch.cos(ang)[None, :, None, :]
    sin = torch.sin(ang)[None, :, None, :]
    xp = x.reshape(Bx, Tx, H, HS // 2, 2)
    x0, x1 = xp[..., 0], xp[..., 1]
    y0 = x0 * cos - x1 * sin
    y1 = x0 * sin + x1 * cos
    return torch.stack([y0, y1], dim=-1).reshape(Bx, Tx, H, HS)


def trunk(p, tokens, cfg):
    """tokens (B,T) int64 -> final normed hidden states xf (B,T,C)."""
    C, L, NH, NKV = cfg["dim"], cfg["n_layer"], cfg["n_head"], cfg["n_kv"]
    HS = C // NH
    eps, theta = cfg["norm_eps"], cfg["rope_theta"]
    Bx, Tx = tokens.shape
    x = p["tok_emb"][tokens]                                       # (B,T,C)
    causal = torch.ones(Tx, Tx, dtype=torch.bool).tril()
    for l in range(L):
        xn = rmsnorm(x, p["attn_norm"][l], eps)
        q = (xn @ p["wq"][l].T).view(Bx, Tx, NH, HS)
        k = (xn @ p["wk"][l].T).view(Bx, Tx, NKV, HS)
        v = (xn @ p["wv"][l].T).view(Bx, Tx, NKV, HS)
        q, k = rope(q, theta), rope(k, theta)
        kv_of = torch.arange(NH) // (NH // NKV)                    # query head -> kv head
        k = k[:, :, kv_of, :]
        v = v[:, :, kv_of, :]                                      # (B,T,NH,HS)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))           # (B,NH,T,HS)
        s = (q @ k.transpose(-1, -2)) / (HS ** 0.5)                # (B,NH,T,T)
        s = s.masked_fill(~causal, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v                           # (B,NH,T,HS)
        a = a.transpose(1, 2).reshape(Bx, Tx, NH * HS)
        x = x + a @ p["wo"][l].T
        xn2 = rmsnorm(x, p["ffn_norm"][l], eps)
        h = torch.nn.functional.silu(xn2 @ p["w1"][l].T) * (xn2 @ p["w3"][l].T)
        x = x + h @ p["w2"][l].T
    return rmsnorm(x, p["norm"], eps)


def lm_logits(p, tokens, cfg, tied):
    xf = trunk(p, tokens, cfg)
    head = p["tok_emb"] if tied else p["lm_head"]
    return xf @ head.T                                             # (B,T,V)


def target_logp(logits, targets):
    """log p(target) (B,T); 0 where target < 0."""
    lsm = torch.log_softmax(logits, dim=-1)
    valid = targets >= 0
    g = lsm.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, g, torch.zeros_like(g))


# ---- the four cases ------------------------------------------------------------------------------

def run_case(case, cfg, rng):
    head = "scalar" if case == "c" else "lm"
    tied = case == "b"
    params32 = random_params(cfg, head, tied, rng)
    V = cfg["vocab"]
    tokens = rng.integers(0, V, size=(B, T)).astype(np.int32)
    targets = rng.integers(0, V, size=(B, T)).astype(np.int32)
    if case in ("a", "b"):
        w = (rng.random((B, T)) < 0.7).astype(np.float32)
        w[0, 0] = 0.0
        w[1, T - 1] = 0.0
        w[0, 1] = 1.0
    else:
        w = rng.standard_normal((B, T)).astype(np.float32)
    if case == "c":
        targets[:] = -1
    if case == "d":
        targets[0, 2] = -1
        targets[1, 0] = -1
        targets[1, 5] = -1

    flat = torch.tensor(params32, dtype=torch.float64, requires_grad=True)
    p = unflatten(flat, cfg, head, tied)
    tok = torch.tensor(tokens, dtype=torch.int64)
    tgt = torch.tensor(targets, dtype=torch.int64)
    wt = torch.tensor(w, dtype=torch.float64)
    if head == "lm":
        logp = target_logp(lm_logits(p, tok, cfg, tied), tgt)
        out = logp
        if case in ("a", "b"):
            obj = (wt * -logp).sum() / wt.sum()
        else:
            obj = (logp * wt).sum()
    else:
        values = (trunk(p, tok, cfg) @ p["score"].T).squeeze(-1)   # (B,T)
        out = values
        obj = (values * wt).sum()
    obj.backward()
    grads = flat.grad.detach().numpy()
    if case == "d":
        assert float(logp.detach()[0, 2]) == 0.0
    return dict(case=case, head=0 if head == "lm" else 1, tied=int(tied), params=params32,
                tokens=tokens, targets=targets, weights=w, objective=float(obj.detach()),
                out=out.detach().numpy().astype(np.float32), grads=grads.astype(np.float32))


def finite_difference_check(cfg, rng):
    """Sanity check of this script itself: autograd vs central differences on a few entries."""
    params32 = random_params(cfg, "lm", False, rng)
    tok = torch.tensor(rng.integers(0, cfg["vocab"], size=(B, T)), dtype=torch.int64)
    tgt = torch.tensor(rng.integers(0, cfg["vocab"], size=(B, T)), dtype=torch.int64)

    def f(flat):
        p = unflatten(flat, cfg, "lm", False)
        return target_logp(lm_logits(p, tok, cfg, False), tgt).sum()

    flat = torch.tensor(params32, dtype=torch.float64, requires_grad=True)
    f(flat).backward()
    worst = 0.0
    for idx in rng.integers(0, flat.numel(), size=24):
        h = 1e-6
        fp = flat.detach().clone(); fp[idx] += h
        fm = flat.detach().clone(); fm[idx] -= h
        fd = (f(fp) - f(fm)).item() / (2 * h)
        worst = max(worst, abs(fd - flat.grad[idx].item()) / max(abs(fd), 1e-3))
    return worst


def write_fixture(path, cfg, cases):
    with open(path + ".tmp", "wb") as fo:
        hdr = [MAGIC, VERSION, cfg["dim"], cfg["hidden"], cfg["n_layer"], cfg["n_head"],
               cfg["n_kv"], cfg["vocab"], cfg["seq_len"], B, T, len(cases), 0, 0, 0, 0]
        fo.write(struct.pack("<16i", *hdr))
        fo.write(struct.pack("<2f", cfg["norm_eps"], cfg["rope_theta"]))
        for c in cases:
            P = c["params"].size
            fo.write(struct.pack("<4i", "abcd".index(c["case"]), c["head"], c["tied"], P))
            fo.write(c["tokens"].astype("<i4").tobytes())
            fo.write(c["targets"].astype("<i4").tobytes())
            fo.write(c["weights"].astype("<f4").tobytes())
            fo.write(c["params"].astype("<f4").tobytes())
            fo.write(struct.pack("<f", c["objective"]))
            fo.write(c["out"].astype("<f4").tobytes())
            fo.write(c["grads"].astype("<f4").tobytes())
    os.replace(path + ".tmp", path)


# ---- optional: replay the llama2.c greedy fixtures --------------------------------------------------

def read_llama2c(path):
    """llama2.c v0 checkpoint -> (cfg, params dict as float64 tensors, tied)."""
    raw = open(path, "rb").read()
    dim, hidden, L, NH, NKV, V, S = struct.unpack("<7i", raw[:28])
    tied = V > 0
    V = abs(V)
    cfg = dict(dim=dim, hidden=hidden, n_layer=L, n_head=NH, n_kv=NKV, vocab=V, seq_len=S,
               norm_eps=1e-5, rope_theta=10000.0)
    f = np.frombuffer(raw[28:], dtype="<f4")
    HS = dim // NH
    shapes = param_shapes(cfg, "lm", True)
    out, off = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        out[name] = torch.tensor(f[off:off + n].reshape(shape), dtype=torch.float64)
        off += n
    off += S * HS  # freq_cis_real, freq_cis_imag (S, HS/2) each: unused
    if not tied:
        out["lm_head"] = torch.tensor(f[off:off + V * dim].reshape(V, dim), dtype=torch.float64)
        off += V * dim
    assert off == f.size, (off, f.size)
    return cfg, out, tied


def check_greedy(root, shared):
    ok = True
    for name in ("stories260K", "aidreams260K"):
        fix = os.path.join(root, "tests", "fixtures", "greedy_%s.txt" % name)
        model = os.path.join(shared, "models", name + ".bin")
        if not (os.path.exists(fix) and os.path.exists(model)):
            print("greedy %s: missing %s or %s, skipped" % (name, fix, model))
            continue
        lines = [ln for ln in open(fix).read().splitlines() if ln and not ln.startswith("#")]
        ids = [int(tok) for tok in " ".join(lines).split()]
        cfg, p, tied = read_llama2c(model)
        seq = torch.tensor([[1] + ids[:-1]], dtype=torch.int64)  # BOS + all but the last
        with torch.no_grad():
            logits = lm_logits(p, seq, cfg, tied)[0]             # (n, V)
        top2 = logits.topk(2, dim=-1)
        pred = top2.indices[:, 0].tolist()
        margin = (top2.values[:, 0] - top2.values[:, 1])
        mism = [i for i, (a, b) in enumerate(zip(pred, ids)) if a != b]
        i_min = int(margin.argmin())
        print("greedy %s: %d ids, argmax mismatches %d%s; smallest top1-top2 margin %.3g at "
              "step %d" % (name, len(ids), len(mism), (" (first at %d)" % mism[0]) if mism else "",
                           float(margin[i_min]), i_min))
        close = (margin < 1e-2).nonzero().flatten().tolist()
        if close:
            print("  steps with margin < 1e-2 (an fp32 implementation may flip there): %s"
                  % " ".join("%d(%.2g)" % (i, float(margin[i])) for i in close))
        ok = ok and not mism
    return ok


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "tiny_ref.bin"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--check-greedy", action="store_true")
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    args = ap.parse_args()

    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(args.seed)
    fd_err = finite_difference_check(CFG, np.random.default_rng(args.seed + 1))
    print("autograd vs finite differences (float64): worst rel err %.2e" % fd_err)
    if fd_err > 1e-5:
        print("reference self-check failed", file=sys.stderr)
        return 1
    cases = [run_case(c, CFG, rng) for c in "abcd"]
    write_fixture(args.out, CFG, cases)
    for c in cases:
        print("case %s: head %s tied %d P %d objective %.6f |grad|max %.3e" % (
            c["case"], "lm" if c["head"] == 0 else "scalar", c["tied"], c["params"].size,
            c["objective"], np.abs(c["grads"]).max()))
    print("wrote %s (%d bytes)" % (args.out, os.path.getsize(args.out)))
    if args.check_greedy and not check_greedy(root, args.shared):
        print("greedy replay disagrees with the fixtures", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
