"""Data pipeline speed: synthesis, rendering, sample conversion, and DataLoader images/s for the default config.

    python benchmarks/bench_data.py [--n 96] [--batch-size 8] [--workers 0 2] [--augment 0 0.5]

Prints a table and writes benchmarks/results/data.json.
"""
import argparse, json, os, platform, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
import numpy as np
import torch
from torch.utils.data import DataLoader
from ecg_digitization.signals import synthesize_ecg
from ecg_digitization.render import render_ecg
from ecg_digitization.data.samples import to_sample
from ecg_digitization.data import SyntheticEcgDataset


def per_call_ms(fn, n):
    fn()                                                     # warm-up
    t = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - t) / n * 1000


def loader_rate(n, batch_size, workers, augment, style, height=256, width=320, dpi=100):
    "Images/s over one epoch of `n` items: total (with worker start-up) and after the first batch."
    ds = SyntheticEcgDataset(n, seed=0, dpi=dpi, image_height=height, image_width=width, augment_strength=augment, style=style)
    dl = DataLoader(ds, batch_size=batch_size, num_workers=workers, shuffle=False)
    t0 = time.perf_counter(); t1, seen = None, 0
    for b in dl:
        seen += len(b["index"])
        if t1 is None: t1, first = time.perf_counter(), seen
    t2 = time.perf_counter()
    return dict(total=seen / (t2 - t0), steady=(seen - first) / (t2 - t1) if seen > first else float("nan"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=96, help="items per DataLoader epoch")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--augment", type=float, nargs="+", default=[0.0, 0.5])
    p.add_argument("--style", nargs="+", default=["random", "default"], help="SyntheticEcgDataset style (random is the default)")
    a = p.parse_args()
    torch.set_num_threads(1)
    g = np.random.default_rng(0)
    rec = synthesize_ecg(g)
    page = render_ecg(rec, dpi=100, rng=g)
    steps = {"synthesize_ecg (10 s, 500 Hz) ms": per_call_ms(lambda: synthesize_ecg(g), 200),
             "render_ecg (dpi 100) ms": per_call_ms(lambda: render_ecg(rec, dpi=100, rng=g), 30),
             "to_sample (-> 256x320) ms": per_call_ms(lambda: to_sample(page, 256, 320), 30),
             "SyntheticEcgDataset item + sample ms": per_call_ms(lambda: SyntheticEcgDataset(8)[3], 20)}
    rows = []
    for style in a.style:
        for aug in a.augment:
            for w in a.workers:
                r = loader_rate(a.n, a.batch_size, w, aug, style)
                rows.append(dict(style=style, augment_strength=aug, num_workers=w, images_per_s=r["total"], steady_images_per_s=r["steady"]))
    print(f"{'step':40s} {'ms':>8s}")
    for k, v in steps.items(): print(f"{k:40s} {v:8.1f}")
    print(f"\nDataLoader, SyntheticEcgDataset 256x320, dpi 100, batch {a.batch_size}, {a.n} items per epoch")
    print(f"{'style':>8s} {'augment':>8s} {'workers':>8s} {'img/s':>8s} {'img/s after 1st batch':>22s}")
    for r in rows: print(f"{r['style']:>8s} {r['augment_strength']:8.1f} {r['num_workers']:8d} {r['images_per_s']:8.1f} {r['steady_images_per_s']:22.1f}")
    out = ROOT / "benchmarks" / "results"; out.mkdir(parents=True, exist_ok=True)
    (out / "data.json").write_text(json.dumps(dict(steps_ms=steps, loader=rows, n=a.n, batch_size=a.batch_size,
        machine=dict(cpus=os.cpu_count(), python=platform.python_version(), torch=torch.__version__, platform=platform.platform())), indent=1))
    print(f"\nwrote {out / 'data.json'}")


if __name__ == "__main__":
    main()
