"""The shipped model on heavily shaded pages: official SNR per page, how each was levelled, and seconds per page.

Pages: `augment(preset="heavy_shading")` of our renderings (creases and crumpled texture as dark as the trace, a hand
shadow, a 2000-3500 K or 11000-16000 K colour cast, noise sigma 8-20, rotation within ±5°, table/coloured/black
surrounds), 200 dpi, layout 3x4+II; record and style from seed `[7_000_000, i]`, augmentation from `[7_000_001, i]`
(the pages of tests/test_heavy_pages.py). Per page: `challenge_snr` of `Digitizer.digitize`, the true and estimated
rotation, where the rotation came from and which reading `vectorize` chose (`meta["reading"]`). With `--rotations`
also the rotation read three ways from the page as the vectorizer sees it (at most 2200 px): Hough lines alone,
Hough checked by the spectrum (`grid.estimate_rotation`), and `level.page_rotation` with the refined trace map.

    python benchmarks/bench_heavy.py [--n 20] [--start 0] [--rotations] [--out benchmarks/results/heavy.json]
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing
import numpy as np

def heavy_page(i:int, dpi:float=200):
    "(augmented page, true rotation in `vectorize`'s sign) of heavy-set page `i`."
    from ecg_digitization.signals import synthesize_ecg
    from ecg_digitization.render import render_ecg, render_rng_style
    from ecg_digitization.augment import augment
    g = np.random.default_rng([7_000_000, i])
    page = render_ecg(synthesize_ecg(g), dpi=dpi, rng=g, **{**render_rng_style(g), "layout": "3x4+II"})
    a = augment(page, np.random.default_rng([7_000_001, i]), preset="heavy_shading")
    return a, -[p for n, p in a.meta["augmentations"] if n == "geometry"][0]["rotate"]["deg"]

def rotations(dig, image:np.ndarray)->dict:
    "Rotation of `image` read by the Hough lines alone, checked by the spectrum, and with the model's refined trace map."
    import cv2, torch
    from ecg_digitization.vectorize.grid import estimate_rotation
    from ecg_digitization.vectorize.level import page_rotation
    from ecg_digitization.vectorize.refine import refine_trace
    m = dig.model
    with torch.no_grad(): prob = m.probabilities(m(m.preprocess(image).to(dig.device)))[0]
    page = m.page_rgb(image); f = min(1.0, m.refine_max_side / max(page.shape[:2]))
    if f < 1: page = cv2.resize(page, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return dict(hough=estimate_rotation(page, check=False), checked=estimate_rotation(page),
                page=page_rotation(page, refine_trace(prob, page)[0])["deg"])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="default: the shipped model; or models:/…, runs:/…, a checkpoint")
    ap.add_argument("--n", type=int, default=20, help="pages")
    ap.add_argument("--start", type=int, default=0, help="first page index")
    ap.add_argument("--rotations", action="store_true", help="also read each page's rotation three ways")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "heavy.json"))
    a = ap.parse_args()
    from ecg_digitization.digitize import Digitizer
    from ecg_digitization.metrics import challenge_snr
    dig = Digitizer.from_uri(a.model, device="cpu")
    rows = []
    for i in range(a.start, a.start + a.n):
        page, true = heavy_page(i)
        t = time.perf_counter(); est = dig.digitize(page.image, fs=page.record.fs); dt = time.perf_counter() - t
        m = est.meta
        row = dict(page=i, snr_db=challenge_snr(page.record, est), seconds=dt, true_deg=true, rotation_deg=m.get("rotation_deg"),
                   rotation_from=m.get("rotation_from"), reading=m.get("reading", {}).get("chosen"), warning=m.get("warning"))
        if a.rotations: row.update({f"{k}_err_deg": v - true for k, v in rotations(dig, page.image).items()})
        rows.append(row)
        print(f"page {i:3d}  {row['snr_db']:6.2f} dB  rotation {row['rotation_deg'] or 0:+.2f}° (true {true:+.2f}, from the {row['rotation_from']})"
              f"  reading: {row['reading']}  {dt:.2f} s" + (f"  {row['warning']}" if row["warning"] else ""), flush=True)
    v = np.array([r["snr_db"] for r in rows])
    summary = dict(n=len(v), mean_snr_db=float(v.mean()), min_snr_db=float(v.min()), below_10_db=int((v < 10).sum()),
                   median_seconds=float(np.median([r["seconds"] for r in rows])))
    print(f"\n{len(v)} pages: mean {v.mean():.2f} dB, min {v.min():.2f} dB, {int((v < 10).sum())} below 10 dB; "
          f"digitize median {summary['median_seconds']:.2f} s ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    if a.rotations:
        for k in ("hough", "checked", "page"):
            e = np.abs([r[f"{k}_err_deg"] for r in rows])
            summary[f"rotation_{k}"] = dict(max_deg=float(e.max()), over_0_2=int((e > 0.2).sum()), over_0_5=int((e > 0.5).sum()),
                                            median_deg=float(np.median(e)))
            print(f"rotation error, {k:8s}: max {e.max():.2f}°, {(e > 0.2).sum()} pages > 0.2°, {(e > 0.5).sum()} > 0.5°, median {np.median(e):.3f}°")
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(summary=summary, pages=rows, machine=platform.platform()), indent=1))
    print(f"wrote {out}")

if __name__ == "__main__": main()
