#!/usr/bin/env python3
"""bench_torch_train.py: training throughput of the same Llama-2 model in plain PyTorch (fp32, CPU),
the yardstick for the C library's training step.

One step = forward, cross-entropy over all B*T positions, backward, clip_grad_norm_(1.0),
AdamW (betas (0.9, 0.95), eps 1e-5, weight decay 0.1), zero_grad. Random tokens and targets.
Reference config (llama2.c's 15M "stories" shape with Llama 2's 32k vocabulary):
    dim 288, 6 layers, 6 heads, 6 kv heads, hidden 768, vocab 32000, seq 256, untied head,
    batch 4 x 256.
Written with standard ops only (nn.Linear, matmuls, a causal mask; torch 1.13 has no
scaled_dot_product_attention). RoPE uses the interleaved pairs of Meta's/llama2.c's checkpoints.

Usage (Debian's torch: /usr/bin/python3):
    /usr/bin/python3 experiments/bench_train/bench_torch_train.py [--threads 2] [--warmup 2] [--steps 5]
Prints ms/step and tokens/s (tokens = B*T per step) over the timed steps.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(seq, hs, theta):
    inv = theta ** (-torch.arange(0, hs, 2).float() / hs)          # (HS/2,)
    ang = torch.arange(seq).float()[:, None] * inv[None, :]        # (T, HS/2)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    """x (B,T,H,HS); rotates interleaved pairs (2i, 2i+1)."""
    B, T, H, HS = x.shape
    xp = x.view(B, T, H, HS // 2, 2)
    x0, x1 = xp[..., 0], xp[..., 1]
    c, s = cos[:T, None, :], sin[:T, None, :]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).view(B, T, H, HS)


class Attention(nn.Module):
    def __init__(self, dim, n_head, n_kv):
        super().__init__()
        self.nh, self.nkv, self.hs = n_head, n_kv, dim // n_head
        self.wq = nn.Linear(dim, n_head * self.hs, bias=False)
        self.wk = nn.Linear(dim, n_kv * self.hs, bias=False)
        self.wv = nn.Linear(dim, n_kv * self.hs, bias=False)
        self.wo = nn.Linear(n_head * self.hs, dim, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = apply_rope(self.wq(x).view(B, T, self.nh, self.hs), cos, sin)
        k = apply_rope(self.wk(x).view(B, T, self.nkv, self.hs), cos, sin)
        v = self.wv(x).view(B, T, self.nkv, self.hs)
        if self.nkv != self.nh:
            rep = self.nh // self.nkv
            k = k.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)   # (B,NH,T,HS)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hs))
        att = att.masked_fill(mask[:T, :T], float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.wo(y.transpose(1, 2).reshape(B, T, self.nh * self.hs))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.attn_norm = RMSNorm(a.dim, 1e-5)
        self.attn = Attention(a.dim, a.heads, a.kv_heads)
        self.ffn_norm = RMSNorm(a.dim, 1e-5)
        self.ffn = FeedForward(a.dim, a.hidden)

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.ffn(self.ffn_norm(x))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.tok_emb = nn.Embedding(a.vocab, a.dim)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.dim, 1e-5)
        self.lm_head = nn.Linear(a.dim, a.vocab, bias=False)
        cos, sin = rope_tables(a.seq, a.dim // a.heads, 10000.0)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.register_buffer("mask", torch.ones(a.seq, a.seq, dtype=torch.bool).triu(1),
                             persistent=False)
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * a.layers) if n.endswith(("wo.weight", "w2.weight")) \
                    else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, tokens, targets):
        x = self.tok_emb(tokens)
        for blk in self.layers:
            x = blk(x, self.cos, self.sin, self.mask)
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--dim", type=int, default=288)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Llama(a)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-5)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq))
    targets = torch.randint(0, a.vocab, (a.batch, a.seq))

    def step():
        loss = model(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    print("torch %s, %d threads, %.2fM parameters, batch %dx%d" % (
        torch.__version__, torch.get_num_threads(), n_params / 1e6, a.batch, a.seq))
    for i in range(a.warmup):
        t0 = time.perf_counter()
        loss = step()
        print("warm-up step %d: loss %.4f, %.0f ms" % (i, loss, 1e3 * (time.perf_counter() - t0)))
    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        print("step %d: loss %.4f, %.0f ms" % (i, loss, 1e3 * times[-1]))
    ms = 1e3 * sum(times) / len(times)
    tok_s = a.batch * a.seq * len(times) / sum(times)
    print("RESULT torch train: %.1f ms/step, %.1f tokens/s (mean of %d steps, best step %.1f ms)"
          % (ms, tok_s, len(times), 1e3 * min(times)))


if __name__ == "__main__":
    main()
