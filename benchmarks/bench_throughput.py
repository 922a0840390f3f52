"""Digitizing throughput in pages/s: the forward pass alone, and end to end with batches and finishing processes.

Pages are our renderings (`render_ecg`, layout 3x4+II, 200 dpi; `--distinct` different ones, repeated up to `--pages`).
- `forward`: `DigitizerNet.forward_pages` (resize + paper flattening + one forward pass) per batch size, the GPU synchronised.
- `end to end`: `Digitizer.digitize_many` (forward passes + refinement + vectorization into 12-lead records) per batch size and
  number of finishing processes (`workers`); `max diff` is the largest difference in mV from the records of `workers=0`,
  batch size 1 (the finishing processes must not change any record).
Run it on a GPU machine for the GPU figures (`--device cuda`); on a CPU it works the same, only slower.

    python benchmarks/bench_throughput.py --model runs/checkpoints/<run id>/best_model.pt [--pages 64] [--batch-sizes 1,8,16] [--workers 0,4,8]
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing
import numpy as np, torch
from ecg_digitization.digitize import Digitizer

SEED0 = 6_000_000   # far from training and validation seeds

def pages(distinct:int, n:int)->list:
    "`n` page images: `distinct` held-out renderings, repeated."
    from ecg_digitization.signals import synthesize_ecg
    from ecg_digitization.render import render_ecg, render_rng_style
    imgs = []
    for i in range(distinct):
        g = np.random.default_rng([SEED0, i])
        imgs.append(render_ecg(synthesize_ecg(g), dpi=200, rng=g, **{**render_rng_style(g), "layout": "3x4+II"}).image)
    return [imgs[i % distinct] for i in range(n)]

def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()

def forward_rate(model, imgs:list, bs:int, dev)->float:
    "Pages/s of preprocessing and forward passes alone."
    model.forward_pages(imgs[:bs]); sync(dev)                           # warm-up (cuDNN picks its kernels)
    t = time.perf_counter()
    for i in range(0, len(imgs), bs): model.forward_pages(imgs[i:i + bs])
    sync(dev)
    return len(imgs) / (time.perf_counter() - t)

def parse_ints(s:str, name:str, least:int)->list:
    try: v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError: raise SystemExit(f"{name} must be comma-separated integers, got {s!r}")
    if not v or min(v) < least: raise SystemExit(f"{name} must be integers >= {least}, got {s!r}")
    return v

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="default (the shipped model), a models:/… or runs:/… URI, or a local checkpoint (.pt)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--pages", type=int, default=32, help="pages per timed run")
    ap.add_argument("--distinct", type=int, default=8, help="different renderings among them")
    ap.add_argument("--batch-sizes", default="1,8", help="comma-separated pages per forward pass")
    ap.add_argument("--workers", default=None, help="comma-separated finishing processes (default: 0 and the device's default)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "throughput.json"))
    a = ap.parse_args()
    if a.pages < 1 or a.distinct < 1: raise SystemExit("--pages and --distinct must be at least 1")
    bss = parse_ints(a.batch_sizes, "--batch-sizes", 1)
    dig = Digitizer.from_uri(a.model, device=a.device, workers=0)
    dev, model = dig.device, dig.model
    wks = parse_ints(a.workers, "--workers", 0) if a.workers else sorted({0, dig.default_workers})
    t = time.perf_counter(); imgs = pages(a.distinct, a.pages)
    print(f"rendered {a.distinct} pages of {imgs[0].shape[1]}x{imgs[0].shape[0]} px in {time.perf_counter() - t:.1f} s")
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    ref = dig.digitize_many(imgs[:a.distinct], batch_size=1)             # records to compare every setting against
    rows = []
    for bs in bss:
        r = forward_rate(model, imgs, bs, dev)
        rows.append(dict(stage="forward", batch_size=bs, workers=None, pages_per_s=r)); print(f"forward      bs {bs:3d}            {r:8.2f} pages/s")
    for w in wks:
        with Digitizer(model, a.device, workers=w) as d:
            for bs in bss:
                d.digitize_many(imgs[:max(1, w) * bs], batch_size=bs)      # warm-up: starts the finishing processes
                t = time.perf_counter(); recs = d.digitize_many(imgs, batch_size=bs); dt = time.perf_counter() - t
                bad = [r for r in recs if isinstance(r, Exception)]
                if bad: raise SystemExit(f"{len(bad)} page(s) failed with workers={w}, batch size {bs}: {bad[0]!r}")
                diff = max(float(np.nanmax(np.abs(r.signal - q.signal), initial=0)) for r, q in zip(recs, ref))
                rows.append(dict(stage="end to end", batch_size=bs, workers=w, pages_per_s=len(imgs) / dt, max_diff_mv=diff))
                print(f"end to end   bs {bs:3d} workers {w:2d} {len(imgs) / dt:8.2f} pages/s  (max diff {diff:.2g} mV)")
    info = dict(model=a.model, device=str(dev), gpu=gpu, machine=platform.machine(), cpus=os.cpu_count(),
                torch=torch.__version__, torch_threads=torch.get_num_threads(), pages=a.pages, distinct=a.distinct,
                page=f"{imgs[0].shape[1]}x{imgs[0].shape[0]}")
    print(f"\n{gpu or 'CPU'} ({dev}), {os.cpu_count()} CPUs, torch {torch.__version__}, {a.pages} pages of {info['page']}")
    print(f"{'stage':12} {'batch':>5} {'workers':>7} {'pages/s':>8}")
    for r in rows: print(f"{r['stage']:12} {r['batch_size']:5d} {'' if r['workers'] is None else r['workers']:>7} {r['pages_per_s']:8.2f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(info, rows=rows), indent=1))
    print(f"wrote {a.out}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
