"""Oracle SNR and speed of `vectorize` (and the speed of `challenge_snr`).

Oracle = the page generator's own lead mask instead of a network's, so the SNR is what vectorization alone loses.
- ecg-image-kit pages (PhysioNet Challenge 2024 samples in the shared data): masks drawn from the JSON
  `plotted_pixels` with OpenCV thickness 1 (1 px) and 2 (3 px tall runs); distorted pages either levelled first
  (image deskewed, mask drawn in the level frame, as the digitizer does) or given rotated to `vectorize`.
- our renderings (`render_ecg`, pen 0.25 mm), clean and after `augment(strength=1)`.
Speed: wall-clock and process-CPU time of one `vectorize` call on a 2200x1700 page (with the image: rotation,
grid pitch and calibration pulses; mask only), and of `challenge_snr` on one 12-lead 10 s 500 Hz record.

    python benchmarks/bench_vectorize.py [--n-render 20] [--out benchmarks/results/vectorize.json]
"""
from __future__ import annotations
import argparse, json, platform, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing
import numpy as np
from ecg_digitization.core import EcgRecord, shared_data_dir
from ecg_digitization.metrics import challenge_snr
from ecg_digitization.evaluation.oracle import kit_oracle, render_oracle

def timed(fn, n:int)->dict:
    "Median / min wall-clock ms and median process-CPU ms of n calls of fn()."
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time(); fn()
        wall.append((time.perf_counter() - t) * 1e3); cpu.append((time.process_time() - c) * 1e3)
    return dict(median_ms=statistics.median(wall), min_ms=min(wall), cpu_median_ms=statistics.median(cpu), n=n)

def kit_results()->list:
    d = shared_data_dir()
    if d is None: print("ecg-image-kit pages skipped: no shared data (set ECGD_DATA)"); return []
    rows = []
    for hea in sorted(d.glob("challenge2024_sample*/*.hea")):
        cases = [(1, True), (2, True)] + ([(1, False), (2, False)] if "distorted" in hea.parent.name else [])
        for width, level in cases:
            ref, est, dt = kit_oracle(hea, width, level)
            rows.append(dict(set=hea.parent.name, page=hea.stem, mask_px=width if width == 1 else 3,
                             levelled=level, snr_db=challenge_snr(ref, est), seconds=dt))
    return rows

def kit_refined_results(size=(640, 832))->list:
    "The trace-model path with a perfect network: the 3 px kit mask as trace-vs-paper, shrunk to `size`, refined with the ink."
    import cv2, wfdb
    from ecg_digitization.vectorize.panels import rasterize_traces
    from ecg_digitization.evaluation.oracle import read_kit_traces
    from ecg_digitization.data.samples import downsample_mask
    from ecg_digitization.vectorize.refine import refine_trace
    from ecg_digitization.vectorize import vectorize
    d = shared_data_dir(); rows = []
    if d is None: return rows
    for hea in sorted(d.glob("challenge2024_sample*/*.hea")):
        r = wfdb.rdrecord(str(hea.with_suffix(""))); ref = EcgRecord(r.p_signal, r.fs, r.sig_name, hea.stem)
        img = cv2.cvtColor(cv2.imread(str(hea.with_name(hea.stem + "-0.png"))), cv2.COLOR_BGR2RGB)
        m = rasterize_traces([(l, xy) for l, _, _, xy in read_kit_traces(hea.with_name(hea.stem + "-0.json"))], img.shape[:2], 2) > 0
        coarse = downsample_mask(m.astype(np.uint8), *size).astype(np.float32)
        small = cv2.resize(img, size[::-1], interpolation=cv2.INTER_AREA)
        t = time.perf_counter(); est = vectorize(refine_trace(coarse, img), img); dt = time.perf_counter() - t
        rows.append(dict(set=hea.parent.name, page=hea.stem, snr_refined_db=challenge_snr(ref, est),
                         snr_coarse_db=challenge_snr(ref, vectorize(coarse[None], small)), seconds=dt))
    return rows

def render_results(n:int)->list:
    rows = []
    for strength in (0.0, 1.0):
        for i in range(n):
            ref, est, dt = render_oracle(i, strength)
            rows.append(dict(seed=i, strength=strength, snr_db=challenge_snr(ref, est), seconds=dt,
                             rotation_deg=est.meta["rotation_deg"], px_per_mm=est.meta["px_per_mm"]))
    return rows

def speed(n:int)->dict:
    "vectorize on one 2200x1700 page (rendered, 3x4+II) with and without the image; challenge_snr on its record."
    from ecg_digitization.signals import synthesize_ecg
    from ecg_digitization.render import render_ecg
    from ecg_digitization.vectorize import vectorize
    rng = np.random.default_rng(0); page = render_ecg(synthesize_ecg(rng), rng=rng)
    assert page.image.shape[:2] == (1700, 2200), page.image.shape
    est = vectorize(page.mask, page.image)
    return {"vectorize_with_image": timed(lambda: vectorize(page.mask, page.image), n),
            "vectorize_mask_only": timed(lambda: vectorize(page.mask), n),
            "challenge_snr_record": timed(lambda: challenge_snr(page.record, est), n)}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-render", type=int, default=20, help="rendered pages per augmentation strength")
    ap.add_argument("--n-speed", type=int, default=5, help="repeats for the timings")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "vectorize.json"))
    a = ap.parse_args()
    kit, ren, spd = kit_results(), render_results(a.n_render), speed(a.n_speed)
    ref = kit_refined_results()
    print("\nTrace-model path with a perfect network (kit 3 px mask shrunk to 640x832; refined with the ink vs. read at 640x832)")
    for r in ref: print(f"{r['set']:32s} {r['page']:8s} refined {r['snr_refined_db']:6.2f} dB  coarse {r['snr_coarse_db']:6.2f} dB")
    print("\nOracle SNR (dB), ecg-image-kit pages")
    print(f"{'set':32s} {'page':8s} {'mask':>5s} {'levelled':>8s} {'SNR':>7s} {'s':>6s}")
    for r in kit: print(f"{r['set']:32s} {r['page']:8s} {r['mask_px']:>4d}p {str(r['levelled']):>8s} {r['snr_db']:7.2f} {r['seconds']:6.2f}")
    summary = {}
    for (px, lev) in sorted({(r["mask_px"], r["levelled"]) for r in kit}):
        v = [r["snr_db"] for r in kit if r["mask_px"] == px and r["levelled"] == lev]
        summary[f"kit_{px}px_{'level' if lev else 'rotated'}"] = dict(mean_db=float(np.mean(v)), n=len(v))
    for k in ("snr_refined_db", "snr_coarse_db"):
        for st in ("challenge2024_sample", "challenge2024_sample_distorted"):
            v = [r[k] for r in ref if r["set"] == st]
            if v: summary[f"kit_trace_{k.split('_')[1]}_{st.split('_')[-1]}"] = dict(mean_db=float(np.mean(v)), n=len(v))
    for s in (0.0, 1.0):
        v = [r["snr_db"] for r in ren if r["strength"] == s]
        if v: summary[f"render_strength_{s:g}"] = dict(mean_db=float(np.mean(v)), median_db=float(np.median(v)),
                                                       min_db=float(np.min(v)), n=len(v))
    print("\nSummary")
    for k, v in summary.items(): print(f"{k:28s} " + "  ".join(f"{a}={b:.2f}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items()))
    print("\nSpeed (2200x1700 page; challenge_snr: one 12-lead 10 s 500 Hz record)")
    for k, v in spd.items(): print(f"{k:24s} median {v['median_ms']:8.1f} ms  min {v['min_ms']:8.1f} ms  cpu {v['cpu_median_ms']:8.1f} ms  (n={v['n']})")
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(summary=summary, kit=kit, kit_trace=ref, render=ren, speed=spd, machine=platform.platform(),
                                   python=platform.python_version()), indent=1))
    print(f"\nwrote {out}")

if __name__ == "__main__": main()
