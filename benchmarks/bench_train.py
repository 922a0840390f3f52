"""Training-side speed: train step time and model images/s vs DataLoader images/s (does training wait on data?),
digitize latency for one 2200x1700 page, and MLflow tracking overhead as a share of training time.

    python benchmarks/bench_train.py [--steps 5] [--model best_model.pt] [--out benchmarks/results]

Default config = `compose_config([])` plus `approach=...`; the tracking overhead comes from a real `fit` of the default
(cpu_quick) config into a throw-away sqlite store.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np, torch


def step_time(approach: str, steps: int) -> dict:
    from ecg_digitization.training.config import compose_config, model_from_config
    from ecg_digitization.data import make_loaders
    cfg = compose_config([f"approach={approach}"])
    tl, _ = make_loaders(cfg)
    it = iter(tl)
    t0 = time.perf_counter(); batches = [next(it) for _ in range(min(steps, len(tl)))]; load_s = time.perf_counter() - t0
    n_img = sum(len(b["image"]) for b in batches)
    model = model_from_config(cfg); opt = torch.optim.AdamW(model.parameters(), 1e-3)
    model.train(); model.loss(model(batches[0]["image"]), batches[0]).backward()       # warm-up
    t0 = time.perf_counter()
    for b in batches:
        loss = model.loss(model(b["image"]), b); opt.zero_grad(); loss.backward(); opt.step()
    train_s = time.perf_counter() - t0
    from ecg_digitization.training.config import resolve_data_defaults
    d = resolve_data_defaults(cfg).data
    crop = f" {d.crop_size}px crops" if d.crop_size else ""       # signalsavants trains on random crops of the page
    return dict(approach=approach, batch_size=cfg.training.batch_size, input=f"{d.image_height}x{d.image_width}{crop}",
                step_s=train_s / len(batches), model_img_s=n_img / train_s, loader_img_s=n_img / load_s,
                data_share_if_serial=load_s / (load_s + train_s))


def digitize_latency(model_path: str | None, n: int = 3) -> dict:
    from ecg_digitization.models import create_model
    from ecg_digitization.digitize import Digitizer
    from ecg_digitization.signals import synthesize_ecg
    from ecg_digitization.render import render_ecg
    page = render_ecg(synthesize_ecg(np.random.default_rng(0)), dpi=200).image
    dig = Digitizer.from_uri(model_path) if model_path else Digitizer(create_model("signalsavants"), "cpu")
    dig.digitize(page)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); dig.digitize(page); ts.append(time.perf_counter() - t0)
    return dict(page=f"{page.shape[1]}x{page.shape[0]}", model=model_path or "untrained signalsavants (default config)",
                median_s=float(np.median(ts)), target_s=2.0)


def tracking_timer():
    "A benchmark callback: after `fit`, the seconds its MLflowCallback spent in MLflow calls (not logged to the run)."
    from ecg_digitization.training import Callback, MLflowCallback
    class TrackingTimer(Callback):
        def on_fit_end(self, tr, status):     # runs after MLflowCallback's own on_fit_end
            cb = next(c for c in tr.callbacks if isinstance(c, MLflowCallback))
            self.overhead_s, self.epoch_s = cb.overhead_s, cb.epoch_s
    return TrackingTimer()


def tracking_overhead() -> dict:
    from ecg_digitization.training import fit
    tmp, timer = Path(tempfile.mkdtemp()), tracking_timer()
    t0 = time.perf_counter()
    fit(overrides=["approach=signalsavants", f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db",
                   f"training.checkpoint_dir={tmp}/ckpt"], callbacks=[timer])
    total = time.perf_counter() - t0
    return dict(fit_total_s=total, tracking_s=timer.overhead_s, share=timer.overhead_s / total,
                per_epoch_tracking_s=timer.epoch_s, target_share=0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--model", default=None, help="checkpoint or models:/ URI for digitize latency")
    ap.add_argument("--skip-fit", action="store_true", help="skip the tracking-overhead fit (about 3 minutes)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rows = [step_time(ap_, a.steps) for ap_ in ("baseline", "signalsavants")]
    print("\ntrain step (default cpu_quick config)")
    print(f"{'approach':14} {'batch':>5} {'input':>22} {'step s':>8} {'model img/s':>12} {'loader img/s':>13}")
    for r in rows:
        print(f"{r['approach']:14} {r['batch_size']:>5} {r['input']:>22} {r['step_s']:>8.2f} {r['model_img_s']:>12.1f} {r['loader_img_s']:>13.1f}")
    dl = digitize_latency(a.model)
    print(f"\ndigitize one {dl['page']} page: {dl['median_s']:.2f} s (target < {dl['target_s']} s; {dl['model']})")
    res = dict(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(), load_avg=os.getloadavg()[0],
               torch_threads=torch.get_num_threads(), train=rows, digitize=dl)
    if not a.skip_fit:
        tr = tracking_overhead()
        print(f"\ntracking overhead: {tr['tracking_s']:.2f} s of {tr['fit_total_s']:.1f} s fit = {100 * tr['share']:.2f} % (target < 2 %)")
        res["tracking"] = tr
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps(res, indent=1))
    print(f"\nwrote {out / 'train.json'}  (load average at start {res['load_avg']:.1f})")


if __name__ == "__main__":
    main()
