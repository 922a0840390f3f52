"""Run every benchmark in this folder, one after the other, then print one summary table and write
benchmarks/results/all.json.   python benchmarks/run_all.py [--quick] [--model default|models:/…|checkpoint.pt|none]

--quick passes small sample counts to each script (for a smoke run; the numbers are then rougher).
--model (default: the shipped model) is the model bench_digitize.py (official SNR on held-out and ecg-image-kit pages,
digitize latency) and bench_throughput.py (pages/s) measure.
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RES = HERE / "results"
SCRIPTS = {  # script -> (normal args, quick args)
    "bench_render.py": ([], ["--n", "5"]),
    "bench_data.py": ([], ["--n", "16", "--workers", "0"]),
    "bench_vectorize.py": ([], []),
    "bench_train.py": ([], ["--steps", "2", "--skip-fit"]),
    "bench_ddp.py": ([], []),
    "bench_threads.py": ([], ["--pages", "2"]),
}


def load(name):
    p = RES / name
    return json.loads(p.read_text()) if p.exists() else None


def summary() -> list:
    rows = []
    r = load("render.json")
    if r:
        tg = r.get("targets_ms", {})
        for k in ("clean", "augmented"):
            v = r["results"].get("threads=1", {}).get(k)
            if v: rows.append((f"render {k} page, 1 thread (2200x1700)", f"{v['median_ms']:.0f} ms",
                               f"CPU {v['cpu_median_ms']:.0f} ms; target < {tg.get(k, '?')} ms"))
    d = load("data.json")
    if d:
        for row in d.get("loader", [])[:4]:
            rows.append((f"DataLoader {row['style']} style, augment {row['augment_strength']}, {row['num_workers']} workers",
                         f"{row['images_per_s']:.1f} img/s", "256x320 model input"))
    t = load("train.json")
    if t:
        for row in t["train"]:
            rows.append((f"train step {row['approach']} ({row['input']}, bs {row['batch_size']})", f"{row['step_s']:.2f} s",
                         f"model {row['model_img_s']:.1f} img/s vs loader {row['loader_img_s']:.1f} img/s"))
        d = t["digitize"]; rows.append((f"digitize one {d['page']} page (bench_train's model)", f"{d['median_s']:.2f} s", "< 2 s"))
        if "tracking" in t:
            rows.append(("MLflow tracking share of fit time", f"{100 * t['tracking']['share']:.2f} %", "< 2 %"))
    g = load("digitize.json")
    if g:
        for k, v in g["summary"].items():
            rows.append((f"digitizer SNR (official), {k} ({v['n']} pages)", f"{v['snr_db']:.2f} dB", f"worst page {v['min_page_snr_db']:.2f} dB; {g['model']}"))
        rows.append((f"digitize one {g['latency']['page']} page, trained model", f"{g['latency']['median_s']:.2f} s", "< 2 s"))
    p = load("throughput.json")
    if p:
        for row in p["rows"]:
            w = "" if row["workers"] is None else f", {row['workers']} finishing processes"
            rows.append((f"digitize throughput, {row['stage']}, batch {row['batch_size']}{w}", f"{row['pages_per_s']:.2f} pages/s",
                         f"{p['gpu'] or 'CPU'}, {p['cpus']} CPUs"))
    h = load("threads.json")
    if h:
        for row in h["rows"]:
            rows.append((f"digitize, {row['threads']} thread(s) per process, {row['busy']} busy process(es) beside",
                         f"{row['cpu_s_per_page']:.2f} CPU-s/page", f"{row['s_per_page']:.2f} s/page; shipped model, 100 dpi"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="default", help="the model for bench_digitize.py and bench_throughput.py: default (the shipped one), models:/…, runs:/… or .pt; 'none' skips them")
    a = ap.parse_args()
    RES.mkdir(exist_ok=True)
    runs, scripts = {}, dict(SCRIPTS)
    if a.model and a.model != "none":
        scripts["bench_digitize.py"] = (["--model", a.model], ["--model", a.model, "--n", "3", "--repeat", "2"])
        scripts["bench_throughput.py"] = (["--model", a.model, "--pages", "16", "--distinct", "4"],
                                          ["--model", a.model, "--pages", "4", "--distinct", "2", "--batch-sizes", "1"])
    else: print("bench_digitize.py and bench_throughput.py skipped (--model none)")
    for script, (args, quick) in scripts.items():
        if not (HERE / script).exists(): continue
        print(f"\n=== {script} ===", flush=True)
        t0 = time.time()
        r = subprocess.run([sys.executable, str(HERE / script), *(quick if a.quick else args)])
        runs[script] = dict(returncode=r.returncode, seconds=round(time.time() - t0, 1))
    rows = summary()
    print(f"\n=== summary ({platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}) ===")
    w = max([len(r[0]) for r in rows] + [10])
    for name, value, note in rows: print(f"{name:{w}}  {value:>10}  {note}")
    (RES / "all.json").write_text(json.dumps(dict(runs=runs, summary=rows, machine=platform.machine(), cpus=os.cpu_count()), indent=1))
    print(f"wrote {RES / 'all.json'}")
    return 0 if all(v["returncode"] == 0 for v in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
