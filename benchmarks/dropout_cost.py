"""What dropout costs in time and memory: the measurements too slow for the book's build.

    .venv/bin/python benchmarks/dropout_cost.py [--rounds 9] [--threads 1] [--out benchmarks/dropout_cost.json]
    .venv/bin/python benchmarks/dropout_cost.py --summary   # the README's table, from the results file

Chapter 9 measures memory and eager-mode bandwidth while the book builds. This script adds what takes
minutes, mostly ``torch.compile``'s compilation (a C++ compiler runs for each compiled function), and
writes one JSON file that the chapter's fusion section and the README quote, with the machine and date
that produced it:

1. Bandwidth: tensors from 4 KiB to 64 MiB (from L1 cache to main memory). For each operation, the
   bytes it must move divided by its time, as a fraction of a copy's bandwidth on the same tensor (read
   x, write y: 8 bytes per float32 entry). Operations: copy; apply a bool mask (x * m, 9 bytes); draw
   uniform numbers (``uniform_``, 4 bytes written); draw a Bernoulli float tensor (``bernoulli_``, 4
   bytes); ``F.dropout``; ``torch.native_dropout`` (the fused operator that returns a bool mask, 9
   bytes); from scratch ``x * (torch.rand_like(x) >= p) / q``; and ``torch.compile(F.dropout)``, whose
   generated loop draws a Philox number and applies it in one pass over x. Every ratio is taken within
   one round (all operations timed back to back, in a rotating order), over ``--rounds`` rounds: the
   median and the quartiles of those ratios are reported.
2. Fusion: a transformer-style block ``dropout(gelu(x + b)) + x``, eager against ``torch.compile``:
   forward without autograd, and forward + backward in training. The time ratio (eager / compiled) per
   round, and the tensors autograd saves in each case.
3. Compile time: the first call of each compiled function (compilation included) minus a later call, with
   an empty compile cache (a fresh ``TORCHINDUCTOR_CACHE_DIR``), so a first compilation.
4. CUDA, only when a GPU is present: the bandwidth table again, and the peak memory
   (``torch.cuda.max_memory_allocated``) of an MLP's forward + backward with dropout that saves a float
   mask, a bool mask (``F.dropout`` on CUDA) or only a seed. Without a GPU the JSON says so, and no
   CUDA number is written.

Not a test: timings depend on the machine and on its load, which is recorded (1-minute load average).
``--threads`` (default 1, like the chapter) sets ``torch.set_num_threads``: on a shared machine one thread
gives steadier numbers, because a parallel loop waits for its slowest thread and a busy core makes that
thread slow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dropout_lib.cost import machine, median_spread, saved_tensors, time_paired, unique_bytes  # noqa: E402

P = 0.3
SIZES = [2**k for k in range(10, 25, 2)]  # float32 entries: 4 KiB .. 64 MiB


def operations(n: int, device: str, compiled_dropout) -> dict[str, tuple[float, object]]:
    """name -> (bytes per entry the operation must move, a function running it once)."""
    x = torch.randn(n, device=device)
    y = torch.empty_like(x)
    u = torch.empty_like(x)
    m = torch.rand(n, device=device) >= P
    q = 1 - P
    ops = {
        "copy": (8, lambda: y.copy_(x)),
        "apply a bool mask": (9, lambda: torch.mul(x, m, out=y)),
        "uniform_": (4, lambda: u.uniform_()),
        "bernoulli_": (4, lambda: u.bernoulli_(q)),
        "F.dropout": (8, lambda: F.dropout(x, P, training=True)),
        "torch.native_dropout": (9, lambda: torch.native_dropout(x, P, True)),
        "from scratch": (8, lambda: x * (torch.rand_like(x) >= P) / q),
    }
    if compiled_dropout is not None:
        ops["torch.compile(F.dropout)"] = (8, lambda: compiled_dropout(x))
    return ops


def bandwidth(device: str, rounds: int, compiled_dropout, sync) -> list[dict]:
    rows = []
    for n in SIZES:
        ops = operations(n, device, compiled_dropout)
        with torch.no_grad():
            seconds = time_paired({k: fn for k, (_, fn) in ops.items()}, rounds=rounds, sync=sync)
        for name, (bytes_per_entry, _) in ops.items():
            # effective bandwidth / copy bandwidth, round by round
            ratios = [(bytes_per_entry / t) / (8 / c) for t, c in zip(seconds[name], seconds["copy"])]
            med, q1, q3 = median_spread(ratios)
            rows.append({"device": device, "entries": n, "tensor_bytes": 4 * n, "op": name,
                         "bytes_per_entry": bytes_per_entry, "seconds_median": median_spread(seconds[name])[0],
                         "fraction_of_copy_median": med, "fraction_of_copy_q1": q1, "fraction_of_copy_q3": q3})
        copy_s = median_spread(seconds["copy"])[0]
        print(f"{device} {4 * n / 2**20:8.3f} MiB: copy {8 * n / copy_s / 1e9:6.1f} GB/s; "
              + ", ".join(f"{r['op']} {r['fraction_of_copy_median']:.3f}" for r in rows[-len(ops):]), flush=True)
    return rows


def block(x, b):
    """Bias, GELU, dropout, residual: the neighbours dropout has in a transformer's MLP."""
    return F.dropout(F.gelu(x + b), P, training=True) + x


def fusion(device: str, rounds: int, sync) -> dict:
    rows, cols = 4096, 1024
    x = torch.randn(rows, cols, device=device)
    b = torch.randn(cols, device=device)
    g = torch.randn(rows, cols, device=device)
    compiled = torch.compile(block)
    out: dict = {"shape": [rows, cols]}

    t0 = time.perf_counter()
    with torch.no_grad():
        compiled(x, b)
        sync()
    first = time.perf_counter() - t0

    def train_step(fn):
        xr, br = x.detach().requires_grad_(), b.detach().requires_grad_()
        fn(xr, br).backward(g)

    t0 = time.perf_counter()
    train_step(compiled)
    sync()
    first_train = time.perf_counter() - t0
    with torch.no_grad():
        fwd = time_paired({"eager": lambda: block(x, b), "compiled": lambda: compiled(x, b)}, rounds=rounds, sync=sync)
    step = time_paired({"eager": lambda: train_step(block), "compiled": lambda: train_step(compiled)}, rounds=rounds, sync=sync)
    for label, s in (("forward", fwd), ("forward_backward", step)):
        ratios = [e / c for e, c in zip(s["eager"], s["compiled"])]
        med, q1, q3 = median_spread(ratios)
        out[label] = {"eager_seconds": median_spread(s["eager"])[0], "compiled_seconds": median_spread(s["compiled"])[0],
                      "speedup_median": med, "speedup_q1": q1, "speedup_q3": q3}
        print(f"{device} fusion, {label}: eager / compiled = {med:.2f} (quartiles {q1:.2f} to {q3:.2f})", flush=True)
    out["compile_seconds"] = {"forward": first - out["forward"]["compiled_seconds"],
                              "forward_backward": first_train - out["forward_backward"]["compiled_seconds"]}
    for label, fn in (("eager", block), ("compiled", compiled)):
        xr, br = x.detach().requires_grad_(), b.detach().requires_grad_()
        _, saved = saved_tensors(lambda: fn(xr, br))
        out[f"saved_{label}"] = {"tensors": [[s.dtype, list(s.shape), s.nbytes] for s in saved],
                                 "bytes_per_entry": unique_bytes(saved) / (rows * cols)}
        print(f"{device} fusion, {label} saves {out[f'saved_{label}']['bytes_per_entry']:.2f} bytes per entry: "
              f"{out[f'saved_{label}']['tensors']}", flush=True)
    return out


class SeedDropout(torch.autograd.Function):
    """Keeps two Python numbers for backward and draws the same mask again there (chapter 9)."""

    @staticmethod
    def forward(ctx, x, p, seed):
        ctx.p, ctx.seed = p, seed
        gen = torch.Generator(device=x.device).manual_seed(seed)
        return x * (torch.rand(x.shape, generator=gen, device=x.device) >= p) / (1 - p)

    @staticmethod
    def backward(ctx, grad):
        gen = torch.Generator(device=grad.device).manual_seed(ctx.seed)
        return grad * (torch.rand(grad.shape, generator=gen, device=grad.device) >= ctx.p) / (1 - ctx.p), None, None


def cuda_peak_memory() -> dict:
    """Peak extra bytes of an MLP's forward + backward on the GPU, per way of keeping the mask."""
    dev = "cuda"
    batch, width, depth = 256, 4096, 4
    ws = [torch.randn(width, width, device=dev, requires_grad=True) / width**0.5 for _ in range(depth)]
    x = torch.randn(batch, width, device=dev)
    kinds = {
        "none": lambda h: h,
        "float mask (x * (m / q))": lambda h: h * ((torch.rand_like(h) >= P).float() / (1 - P)),
        "bool mask (F.dropout on CUDA)": lambda h: F.dropout(h, P, training=True),
        "seed (SeedDropout)": lambda h: SeedDropout.apply(h, P, int(torch.randint(2**62, ()))),
    }
    out = {}
    for name, drop in kinds.items():
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        h = x
        for w in ws:
            h = drop(torch.relu(h @ w))
        h.square().mean().backward()
        torch.cuda.synchronize()
        out[name] = torch.cuda.max_memory_allocated() - base
        for w in ws:
            w.grad = None
        print(f"cuda peak memory, {name}: {out[name] / 2**20:.1f} MiB", flush=True)
    out["entries_per_dropout_layer"] = batch * width
    out["dropout_layers"] = depth
    return out


def summary(result: dict) -> str:
    """The README's table, from a results file (so that the README quotes the file, not a retyping of it)."""
    m, cpu = result["machine"], result["cpu"]
    big = max(r["entries"] for r in cpu["bandwidth"])
    rows = {r["op"]: r for r in cpu["bandwidth"] if r["entries"] == big}
    mib = 4 * big / 2**20

    def frac(op):
        r = rows[op]
        return f"{r['fraction_of_copy_median']:.3f} ({r['fraction_of_copy_q1']:.3f} to {r['fraction_of_copy_q3']:.3f})"

    fusion = cpu["fusion"]
    lines = [
        f"Measured on {m['cpu']} ({m['cores']} logical cores, {m['torch_threads']} thread{'s' if m['torch_threads'] != 1 else ''}), "
        f"torch {m['torch']}, {m['date']}, "
        f"load average {m['load_average_1min']} at the start and {m.get('load_average_1min_at_end')} at the end; "
        f"median (quartiles) over {result['rounds']} rounds.",
        "",
        "| what | measured |",
        "|---|---|",
        f"| copy bandwidth, {mib:.0f} MiB tensor | {8 * big / rows['copy']['seconds_median'] / 1e9:.1f} GB/s |",
    ]
    for op in rows:
        if op != "copy":
            name = f"`{op}`" if any(c in op for c in "._(") else op
            lines.append(f"| {name} on {mib:.0f} MiB, fraction of copy speed | {frac(op)} |")
    for label, what in (("forward", "forward"), ("forward_backward", "forward + backward")):
        r = fusion[label]
        lines.append(f"| `dropout(gelu(x + b)) + x`, {what}: eager time / compiled time | {r['speedup_median']:.2f} "
                     f"({r['speedup_q1']:.2f} to {r['speedup_q3']:.2f}) |")
    lines.append(f"| bytes autograd keeps per entry for that block, eager / compiled | {fusion['saved_eager']['bytes_per_entry']:.2f} / "
                 f"{fusion['saved_compiled']['bytes_per_entry']:.2f} |")
    lines.append(f"| compile time of the block (forward; forward + backward) | {fusion['compile_seconds']['forward']:.0f} s; "
                 f"{fusion['compile_seconds']['forward_backward']:.0f} s |")
    lines.append("| CUDA | " + (result.get("cuda_note") or "see the results file") + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "dropout_cost.json"))
    ap.add_argument("--summary", action="store_true", help="print the README's table from --out and exit")
    args = ap.parse_args()
    if args.summary:
        print(summary(json.loads(Path(args.out).read_text())))
        return
    torch.set_num_threads(args.threads)
    # A fresh compile cache, so that the compile times are those of a first compilation (inductor keeps
    # compiled kernels on disk, by default under /tmp, and would otherwise reuse an earlier run's).
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="dropout-cost-inductor-")
    result: dict = {"machine": machine(), "rounds": args.rounds, "p": P}
    print(result["machine"], flush=True)

    compiled_dropout = torch.compile(lambda x: F.dropout(x, P, training=True), dynamic=True)
    t0 = time.perf_counter()
    with torch.no_grad():
        compiled_dropout(torch.randn(SIZES[0]))
    result["compile_seconds_dropout"] = time.perf_counter() - t0
    cpu = {"bandwidth": bandwidth("cpu", args.rounds, compiled_dropout, None), "fusion": fusion("cpu", args.rounds, lambda: None)}
    result["cpu"] = cpu

    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        result["cuda"] = {"bandwidth": bandwidth("cuda", args.rounds, compiled_dropout, sync),
                          "fusion": fusion("cuda", args.rounds, sync), "peak_memory": cuda_peak_memory()}
    else:
        result["cuda"] = None
        result["cuda_note"] = "no CUDA device on this machine: the CUDA measurements were skipped, not estimated"
    result["machine"]["load_average_1min_at_end"] = machine()["load_average_1min"]
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}\n")
    print(summary(result))


if __name__ == "__main__":
    main()
