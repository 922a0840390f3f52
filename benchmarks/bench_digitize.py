"""Digitizer quality and speed of a trained model: the official PhysioNet Challenge 2024 SNR on held-out pages, and
seconds per page.

Sets (none of them seen in training: synthetic pages use seeds far from any training or validation seed):
- `kit`: the 8 clean ecg-image-kit pages of the shared data (`challenge2024_sample`, `challenge2024_more/clean`),
  and `kit_distorted`: its 5 distorted pages (`challenge2024_sample_distorted`, `challenge2024_more/distorted`).
  ecg-image-kit is the generator of the Challenge 2024 data; we did not write it.
- `clean`: our renderings (`render_ecg`, random house style, layout 3x4+II, 200 dpi, 2200x1700 Letter pages).
- `augmented`: the same pages after `augment(strength=0.5)` without perspective or crop/pad.
- `augmented+persp`: `augment(strength=0.5)` with everything.
- `heavy_shading`: `augment(preset="heavy_shading")`: dark creases and crumpled paper, a shadow, a strong colour
  cast, noise and a rotation within 5 degrees.
Each set's score is the official one: the mean over all (record, lead) pairs (`metrics.score_records`); a page
that fails counts as a missing record (0 dB). Speed: wall-clock seconds of `Digitizer.digitize` on one 2200x1700
page (read from memory), median of `--repeat`.

    python benchmarks/bench_digitize.py [--model default] [--n 20] [--out ...]
    python benchmarks/bench_digitize.py --model runs/checkpoints/<run id>/best_model.pt
"""
from __future__ import annotations
import argparse, json, platform, statistics, sys, time, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing
import numpy as np
from tqdm.auto import tqdm
from ecg_digitization.core import EcgRecord, shared_data_dir
from ecg_digitization.metrics import challenge_snr, score_records
from ecg_digitization.digitize import Digitizer, read_image

SEED0 = 5_000_000   # far from training seeds (0..) and validation seeds (VAL_SEED_OFFSET + ...)
AUG = {"augmented": dict(perspective=False, crop_pad=False), "augmented+persp": {}, "heavy_shading": dict(preset="heavy_shading")}

def synthetic_pages(n:int, dpi:float=200):
    "Held-out (name, image, reference) triples: clean and augmented variants of the same records."
    from ecg_digitization.signals import synthesize_ecg
    from ecg_digitization.render import render_ecg, render_rng_style
    from ecg_digitization.augment import augment
    for i in range(n):
        g = np.random.default_rng([SEED0, i])
        st = {**render_rng_style(g), "layout": "3x4+II"}
        page = render_ecg(synthesize_ecg(g), dpi=dpi, rng=g, **st)
        yield "clean", f"synthetic_{i}", page.image, page.record
        for name, kw in AUG.items():
            a = augment(page, np.random.default_rng([SEED0 + 1, i]), 0.5, **kw)   # a preset ignores the strength
            yield name, f"synthetic_{i}", a.image, a.record

KIT = {"kit": ("challenge2024_sample", "challenge2024_more/clean"),
       "kit_distorted": ("challenge2024_sample_distorted", "challenge2024_more/distorted")}

def kit_pages():
    "(set, name, image, reference) of the ecg-image-kit pages in the shared data (references NaN where not shown)."
    from ecg_digitization.data.challenge import challenge_images
    from ecg_digitization.signals.records import read_record
    d = shared_data_dir()
    if d is None: print("ecg-image-kit pages skipped: no shared data (set ECGD_DATA)"); return
    for name, folders in KIT.items():
        for folder in folders:
            if not (d / folder).is_dir(): print(f"{d / folder}: not found, skipped"); continue
            for hea, img in challenge_images(d / folder):
                yield name, hea.stem, read_image(img), read_record(hea.with_suffix("")).standard()

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="default (the shipped model), a models:/… or runs:/… URI, or a checkpoint (.pt)")
    ap.add_argument("--n", type=int, default=20, help="synthetic held-out records (each gives a clean and augmented pages)")
    ap.add_argument("--repeat", type=int, default=5, help="timed digitize calls for the latency figure")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "digitize.json"))
    a = ap.parse_args()
    import torch
    if a.threads: torch.set_num_threads(a.threads)
    dig = Digitizer.from_uri(a.model, device="auto")
    rows = []
    pages = list(kit_pages()) + list(synthetic_pages(a.n))
    refs, ests = {}, {}
    for kind, name, img, ref in tqdm(pages, desc="digitizing"):
        t = time.perf_counter()
        try: est, err = dig.digitize(img, fs=ref.fs, name=name), None
        except Exception as e: est, err = None, f"{type(e).__name__}: {e}"   # scored as a missing record
        dt = time.perf_counter() - t
        refs.setdefault(kind, []).append(ref); ests.setdefault(kind, []).append(est)
        rows.append(dict(set=kind, page=name, snr_db=challenge_snr(ref, est), seconds=dt, error=err,
                         warning=est.meta.get("warning") if est is not None else None))
    big = next(img for kind, _, img, _ in pages if kind == "clean")
    dig.digitize(big)
    lat = []
    for _ in range(a.repeat):
        t = time.perf_counter(); dig.digitize(big); lat.append(time.perf_counter() - t)
    sets = {}
    for r in rows: sets.setdefault(r["set"], []).append(r["snr_db"])
    summary = {k: dict(n=len(v), snr_db=score_records(refs[k], ests[k])["snr"], median_page_snr_db=float(np.median(v)),
                       min_page_snr_db=float(np.min(v)), failed=sum(e is None for e in ests[k])) for k, v in sets.items()}
    print(f"\nmodel {a.model} on {dig.device} ({platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f})")
    print(f"{'set':18} {'pages':>5} {'SNR (official)':>15} {'median page':>12} {'worst page':>11} {'failed':>7}")
    for k, v in summary.items():
        print(f"{k:18} {v['n']:5d} {v['snr_db']:12.2f} dB {v['median_page_snr_db']:9.2f} dB {v['min_page_snr_db']:8.2f} dB {v['failed']:7d}")
    print(f"digitize one {big.shape[1]}x{big.shape[0]} page: median {statistics.median(lat):.2f} s (min {min(lat):.2f} s, {a.repeat} calls)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    import subprocess
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    Path(a.out).write_text(json.dumps(dict(command="python benchmarks/bench_digitize.py " + " ".join(sys.argv[1:]), commit=commit,
                                           date=time.strftime("%Y-%m-%d"), model=a.model, device=str(dig.device), machine=platform.machine(), cpus=os.cpu_count(),
                                           load=os.getloadavg()[0], summary=summary, pages=rows,
                                           latency=dict(page=f"{big.shape[1]}x{big.shape[0]}", median_s=statistics.median(lat),
                                                        min_s=min(lat), n=a.repeat)), indent=1, default=float))
    print(f"wrote {a.out}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
