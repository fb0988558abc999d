"""Retention microbenchmark: parallel vs chunkwise vs recurrent over sequence length.

Times the three core forms of `rem.models.retention` (fp32, no projections) on the same
q, k, v (b, h, n, d) and checks they agree, then compares the measured ratios with what a
cost model predicts.

The math (per batch row and head, head dims d = e):
- recurrent: n sequential steps; each reads and rewrites the d x e state and does ~5de
  FLOPs, so it is bound by per-step dispatch and state traffic: T_rec = n (k_r tau + 16 d e BH / beta).
- chunkwise (chunk C): n / C sequential steps of GEMMs: intra-chunk 4 C^2 d + cross-chunk
  4 C d e FLOPs per chunk; T_chunk = (n/C) k_c tau + n (4 C d + 4 d e) BH / phi.
- parallel: one step, 4 n^2 d FLOPs (the masked half is computed too) and an n x n score
  matrix: T_par = k_p tau + 4 n^2 d BH / phi.
tau (dispatch cost of one small op), beta (memory bandwidth) and phi (GEMM throughput) are
measured on this machine, k_* are the op counts of the implementation. So the predicted
speedup of chunkwise over recurrent is about C x (per-step cost ratio): with dispatch-bound
steps it tends to C (65 for one block); the parallel form wins while n is below the
crossover where its n^2 FLOPs catch up with the recurrent's n sequential steps.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.harness import BenchResult, measure


def _machine_constants(device: torch.device, d: int) -> dict[str, float]:
    """tau (s per small op), beta (bytes/s streaming), phi (FLOP/s batched GEMM)."""

    def best(fn, reps: int) -> float:
        fn()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2]

    tiny = torch.randn(1, 1, 4, 4, device=device)
    tau = best(lambda: [torch.einsum("bhde,bhef->bhdf", tiny, tiny) for _ in range(100)], 7) / 100
    big = torch.randn(32 * 2**20 // 4, device=device)  # 32 MiB
    out = torch.empty_like(big)
    beta = 3 * big.numel() * 4 / best(lambda: torch.mul(big, 1.0001, out=out).add_(big), 5)
    a = torch.randn(32, 256, d, device=device)
    b = torch.randn(32, d, 256, device=device)
    phi = 2 * 32 * 256 * 256 * d / best(lambda: torch.bmm(a, b), 7)
    return {"tau_s": tau, "beta_bytes_per_s": beta, "phi_flops_per_s": phi}


def _predict(n: int, chunk: int, d: int, bh: int, c: dict[str, float]) -> dict[str, float]:
    tau, beta, phi = c["tau_s"], c["beta_bytes_per_s"], c["phi_flops_per_s"]
    # op counts of rem.models.retention: recurrent 4 (einsum, mul, add, einsum);
    # chunkwise ~14 (decay matrix, 2 einsums, cross einsum, decays, state einsum, adds);
    # parallel ~8 (decay matrix build + 2 einsums).
    t_rec = n * (4 * tau + 16 * d * d * bh / beta)
    chunks = -(-n // chunk)
    t_chunk = chunks * 14 * tau + n * (4 * chunk * d + 4 * d * d) * bh / phi
    t_par = 8 * tau + 4 * n * n * d * bh / phi + 3 * 4 * n * n * bh / beta
    return {"recurrent": t_rec, "chunkwise": t_chunk, "parallel": t_par}


def run(args: Any) -> list[BenchResult]:
    from rem.models.retention import (
        decay_gammas,
        retention_chunkwise,
        retention_parallel,
        retention_recurrent,
    )

    device = args.device
    heads, d = 4, 64  # the paper's MSR: 4 heads of 64
    chunk = 65  # one block of 64 observation tokens + 1 action token
    if args.quick:
        batch, lengths = 2, [65, 260]
    else:
        batch, lengths = (
            (8, [65, 130, 260, 650, 1300])
            if device.type == "cpu"
            else (
                128,
                [65, 130, 260, 650, 1300, 2600],
            )
        )
    gamma = decay_gammas(heads).to(device)
    consts = _machine_constants(device, d)
    results = []
    g = torch.Generator(device="cpu").manual_seed(0)
    for n in lengths:
        q, k, v = (torch.randn(batch, heads, n, d, generator=g).to(device) / d**0.25 for _ in "qkv")

        def parallel(q=q, k=k, v=v):
            return retention_parallel(q, k, v, gamma)

        def chunkwise(q=q, k=k, v=v, n=n):
            state, outs = None, []
            for s in range(0, n, chunk):
                o, state = retention_chunkwise(
                    q[:, :, s : s + chunk],
                    k[:, :, s : s + chunk],
                    v[:, :, s : s + chunk],
                    gamma,
                    state,
                )
                outs.append(o)
            return torch.cat(outs, dim=2)

        def recurrent(q=q, k=k, v=v, n=n):
            state, outs = None, []
            for i in range(n):  # the form itself is sequential: this loop is what is measured
                o, state = retention_recurrent(q[:, :, i], k[:, :, i], v[:, :, i], gamma, state)
                outs.append(o)
            return torch.stack(outs, dim=2)

        with torch.no_grad():
            ref = parallel()
            err = {
                "chunkwise": (chunkwise() - ref).abs().max().item(),
                "recurrent": (recurrent() - ref).abs().max().item(),
            }
            timed = {}
            for name, fn in (
                ("parallel", parallel),
                ("chunkwise", chunkwise),
                ("recurrent", recurrent),
            ):
                times, mem = measure(
                    fn, device=device, warmup=1, repeats=args.repeats, budget_s=args.budget / 3
                )
                timed[name] = (times, mem)
        pred = _predict(n, chunk, d, batch * heads, consts)
        config = {"b": batch, "h": heads, "d": d, "n": n, "chunk": chunk, "dtype": "float32"}
        for name, (times, mem) in timed.items():
            r = BenchResult(
                "retention",
                f"{name}_n{n}",
                "paper" if not args.quick else "tiny",
                str(device),
                f"retention over {n} tokens ({name} form)",
                times,
                batch * n,
                "tokens",
                mem,
                config,
            )
            r.derived["predicted_s"] = f"{pred[name]:.3g}"
            if name != "parallel":
                r.derived["max_abs_err_vs_parallel"] = f"{err[name]:.2e}"
            if name == "recurrent":
                med = {k: sorted(t)[len(t) // 2] for k, (t, _) in timed.items()}
                r.derived["speedup_chunkwise_over_recurrent"] = {
                    "measured": round(med["recurrent"] / med["chunkwise"], 2),
                    "predicted": round(pred["recurrent"] / pred["chunkwise"], 2),
                    "sequential_steps_ratio": round(n / -(-n // chunk), 1),
                }
                r.derived["speedup_parallel_over_recurrent"] = {
                    "measured": round(med["recurrent"] / med["parallel"], 2),
                    "predicted": round(pred["recurrent"] / pred["parallel"], 2),
                    "sequential_steps_ratio": n,
                }
            results.append(r)
    results[0].notes.append(
        "machine constants: tau {tau_s:.2e} s/op, beta {b:.1f} GB/s, phi {p:.1f} GFLOP/s".format(
            tau_s=consts["tau_s"],
            b=consts["beta_bytes_per_s"] / 1e9,
            p=consts["phi_flops_per_s"] / 1e9,
        )
    )
    results[0].derived["machine_constants"] = consts
    return results
