"""Train with `fit` on a machine that has PyTorch but no MLflow (a rented GPU box, an air-gapped node): everything the run
would send to MLflow goes into a folder instead (params, per-epoch metrics, tags, figures, checkpoints), and the best
model is also written in fp16 for shipping.

    python tools/train_offline.py --out DIR [--minutes M] [--epochs E] key=value ...

`--minutes M` fits the schedule to a wall-clock budget: the training loader's pages/s is measured first (about 30 s),
then `data.train_size` is set so that E epochs of training take about M minutes; `training.time_limit_min` is set a
little above M as a backstop. Example, as used for the shipped model (docs/model_card.md):

    python tools/train_offline.py --out runs/gpu --minutes 6 --epochs 4 approach=signalsavants preset=gpu data.val_size=16
"""
from __future__ import annotations
import argparse, json, os, shutil, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch


class FolderTracker:
    "The tracker interface `fit` uses, writing into a folder instead of MLflow."
    def __init__(self, folder): self.folder, self.active, self.run_id, self.tags = Path(folder), False, None, {}
    def _p(self, name): p = self.folder / name; p.parent.mkdir(parents=True, exist_ok=True); return p
    def start_run(self, run_id=None, **kw):
        self.run_id, self.active = run_id or time.strftime("offline-%Y%m%d-%H%M%S"), True; return self
    def log_config(self, cfg):
        def flat(d, pre=""):
            return {k2: v2 for k, v in d.items() for k2, v2 in (flat(v, f"{pre}{k}.").items() if isinstance(v, dict) else [(f"{pre}{k}", v)])}
        self._p("params.json").write_text(json.dumps(flat(cfg), indent=1, default=str))
    def log_text(self, text, artifact_file): self._p(f"artifacts/{artifact_file}").write_text(str(text))
    def set_tags(self, tags):
        self.tags.update({k: str(v) for k, v in tags.items()}); self._p("tags.json").write_text(json.dumps(self.tags, indent=1))
    def delete_tags(self, keys):
        for k in keys: self.tags.pop(k, None)
        self._p("tags.json").write_text(json.dumps(self.tags, indent=1))
    def log_metrics(self, metrics, step=None):
        with open(self._p("metrics.jsonl"), "a") as f:
            f.write(json.dumps({"step": int(step or 0), "time": time.time(), **{k: float(v) for k, v in metrics.items()}}) + "\n")
    def log_figure(self, fig, filename, dpi=110):
        import matplotlib.pyplot as plt
        fig.savefig(self._p(f"artifacts/{filename}"), dpi=dpi, bbox_inches="tight"); plt.close(fig)
    def log_artifact(self, local_path, artifact_path=None):
        shutil.copy2(local_path, self._p(f"artifacts/{artifact_path or '.'}/{Path(local_path).name}"))
    def log_model(self, model, artifact_path="model", registered_model_name=None, **kw): return None
    def end_run(self, status="FINISHED"):
        self.active = False; self._p("status.json").write_text(json.dumps({"status": status, "end": time.time()}))


def loader_pages_per_s(cfg, seconds: float) -> float:
    "Pages/s the configured training loader delivers (workers warmed up first)."
    from ecg_digitization.data import make_loaders
    tl, _ = make_loaders(cfg)
    it, n = iter(tl), 0
    next(it)                                   # worker start-up is not throughput
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        try: n += len(next(it)["image"])
        except StopIteration: it = iter(tl)
    rate = n / (time.perf_counter() - t0)
    del it, tl
    return rate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for the run (params, metrics, checkpoints, model)")
    ap.add_argument("--minutes", type=float, default=None, help="fit data.train_size to this many minutes of training")
    ap.add_argument("--epochs", type=int, default=None, help="with --minutes: epochs to split them into")
    ap.add_argument("--calibrate-s", type=float, default=30.0, help="seconds of loader measurement for --minutes")
    ap.add_argument("overrides", nargs="*", help="config overrides, as for python -m ecg_digitization.train")
    a = ap.parse_args(argv)
    from ecg_digitization.training.config import compose_config
    from ecg_digitization.training import fit
    from ecg_digitization.models import model_state
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    ov = list(a.overrides) + [f"training.checkpoint_dir={out / 'checkpoints'}", "mlflow.register_model=false"]
    if a.epochs: ov.append(f"training.epochs={a.epochs}")
    info = {"argv": sys.argv, "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpus": os.cpu_count()}
    if a.minutes:
        cfg = compose_config(ov)
        rate = loader_pages_per_s(cfg, a.calibrate_s)
        n = max(cfg.training.batch_size, int(rate * a.minutes * 60 / cfg.training.epochs))
        ov += [f"data.train_size={n}", f"training.time_limit_min={a.minutes * 1.1 + 0.5:.2f}"]
        info.update(loader_pages_per_s=rate, train_size=n)
        print(f"loader: {rate:.1f} pages/s -> data.train_size={n} for {cfg.training.epochs} epochs in ~{a.minutes:g} min", flush=True)
    info["overrides"] = ov
    (out / "offline_run.json").write_text(json.dumps(info, indent=1))
    t0 = time.perf_counter()
    res = fit(overrides=ov, tracker=FolderTracker(out), entry_point="train_offline")
    info.update(fit_s=time.perf_counter() - t0, best_val_snr=res.best_val_snr, history=res.history, run_id=res.run_id)
    st = model_state(res.model)
    st["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in st["state_dict"].items()}
    torch.save(st, out / "model_fp16.pt")
    (out / "offline_run.json").write_text(json.dumps(info, indent=1, default=str))
    print(f"done in {info['fit_s']:.0f} s: best val_snr {res.best_val_snr:.2f} dB; model -> {out / 'model_fp16.pt'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
