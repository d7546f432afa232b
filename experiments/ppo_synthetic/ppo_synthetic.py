#!/usr/bin/env python3
"""ppo_synthetic.py: report of experiments/ppo_synthetic.sh (issue 7, acceptance 2).

  report RUN --iters "0 4 8 ..." --round0 R0 RUN_SPEC...
      RUN_SPEC = LABEL:STAGE:ROUNDBASE  (e.g. "beta=0.01:12:200")

For every PPO run (stage STAGE of kind ppo) and every listed iteration k, prints one row:
  - KL and RM reward: the store's metrics ppo/kl_ref (mean over rollouts of the summed per-token
    k1 KL to the reference) and ppo/reward_gated (mean raw gated R_c, before logit/whitening) of
    iteration k+1, i.e. of the rollouts sampled by the policy after k updates = checkpoint iter-k
    (iteration 1's rollouts are the SFT policy's: KL exactly 0);
  - gold reward on the held-out (eval) prompts of the samples of round ROUNDBASE+k (k = 0: R0, the
    SFT policy, shared by all runs), scored by rs_synthetic.gold: mean over prompts of the
    per-prompt mean over its K samples, +- the standard error over prompts; all / safe / unsafe;
    and the paired difference to iteration 0 (same prompts, same sample seeds) +- its se;
  - the share of safe-prompt samples that refuse ("sorry") and that say "happy".
Reads RUN/rlhf.db directly (samples.text, prompts.unsafe, metrics). Standard library only.
"""
import math
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rs_synthetic import gold, word  # noqa: E402


def mean_se(xs):
    m = sum(xs) / len(xs)
    v = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(v / len(xs))


def gold_of_round(db, r):
    rows = db.execute("SELECT s.prompt_id, s.text, p.unsafe FROM samples s JOIN prompts p ON p.id = s.prompt_id "
                      "WHERE s.round = ? AND p.split = 'eval'", (r,)).fetchall()
    if not rows:
        return None
    by, unsafe, refuse, happy, nsafe = {}, {}, 0, 0, 0
    for pid, text, u in rows:
        by.setdefault(pid, []).append(gold(text or "", bool(u)))
        unsafe[pid] = bool(u)
        if not u:
            nsafe += 1
            refuse += word(text or "", "sorry")
            happy += word(text or "", "happy")
    out = {}
    for name, f in (("all", lambda p: True), ("safe", lambda p: not unsafe[p]), ("unsafe", lambda p: unsafe[p])):
        out[name] = mean_se([sum(by[p]) / len(by[p]) for p in sorted(by) if f(p)])
    out["per_prompt"] = {p: sum(by[p]) / len(by[p]) for p in by}
    out["n"] = len(by)
    out["K"] = len(rows) // len(by)
    out["refuse"] = refuse / max(nsafe, 1)
    out["happy"] = happy / max(nsafe, 1)
    return out


def report(argv):
    run = argv[0]
    opts, specs, i = {}, [], 1
    while i < len(argv):
        if argv[i].startswith("--"):
            opts[argv[i]] = argv[i + 1]
            i += 2
        else:
            specs.append(argv[i])
            i += 1
    iters = [int(x) for x in opts["--iters"].split()]
    r0 = int(opts["--round0"])
    db = sqlite3.connect(os.path.join(run, "rlhf.db"))
    for spec in specs:
        label, stage, base = spec.rsplit(":", 2)
        stage, base = int(stage), int(base)
        met = {}
        for step, name, v in db.execute("SELECT step, name, value FROM metrics WHERE stage_id = ?", (stage,)):
            met[(name, step)] = v
        params = db.execute("SELECT params FROM stages WHERE id = ?", (stage,)).fetchone()[0]
        print("\n### %s (stage %d)\n\n%s\n" % (label, stage, params))
        print("| iteration | KL to ref | RM reward (gated R_c) | gold, 65 held-out: mean +- se | gold - iteration 0 "
              "(paired se) | gold safe | gold unsafe | safe: refuse / happy |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        g0 = gold_of_round(db, r0)
        for k in iters:
            g = gold_of_round(db, r0 if k == 0 else base + k)
            kl, rm = met.get(("ppo/kl_ref", k + 1)), met.get(("ppo/reward_gated", k + 1))
            fmt = lambda x: "-" if x is None else "%.3f" % x
            if g is None:
                print("| %d | %s | %s | - | - | - | - | - |" % (k, fmt(kl), fmt(rm)))
                continue
            ids = sorted(set(g["per_prompt"]) & set(g0["per_prompt"]))
            d = mean_se([g["per_prompt"][p] - g0["per_prompt"][p] for p in ids])
            print("| %d | %s | %s | %.3f +- %.3f | %+.3f +- %.3f | %.3f +- %.3f | %.3f +- %.3f | %.2f / %.2f |" % (
                k, fmt(kl), fmt(rm), g["all"][0], g["all"][1], d[0], d[1], g["safe"][0], g["safe"][1],
                g["unsafe"][0], g["unsafe"][1], g["refuse"], g["happy"]))
        print("\n(gold: %d prompts x K = %d samples per row; KL/RM of iteration k+1's rollouts = policy iter-k)" % (
            g["n"] if g else 0, g["K"] if g else 0))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "report":
        report(sys.argv[2:])
    else:
        sys.exit(__doc__)
