"""Segmenter architectures side by side: the same pages, steps, seed and encoder for each `model.architecture`;
reports the official validation SNR (full digitizing pipeline), validation loss, training time, CPU forward time of one
640x832 page and the parameter count.

    python benchmarks/bench_arch.py [--arch unet,smp_unet,smp_fpn] [--encoder resnet18] [--epochs 4] [--train-size 96]
                                    [--val-size 8] [--out benchmarks/results]

Each architecture trains with `Trainer` (no MLflow) from `compose_config` of the same overrides, so the only
difference between rows is the network.
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np, torch


def run_one(arch: str, a) -> dict:
    from ecg_digitization.training.config import compose_config
    from ecg_digitization.training import Trainer
    cfg = compose_config(["approach=signalsavants", f"model.architecture={arch}", f"model.encoder_name={a.encoder}",
                          f"training.epochs={a.epochs}", f"data.train_size={a.train_size}", f"data.val_size={a.val_size}",
                          f"data.augment_strength={a.augment}", f"training.lr={a.lr}", f"training.seed={a.seed}",
                          f"data.seed={a.seed}", "training.device=cpu"])
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    tr = Trainer(cfg).run()
    train_s = time.perf_counter() - t0
    m = tr.best_model()
    x = torch.rand(1, 3, 640, 832)
    with torch.no_grad():
        m(x); t1 = time.perf_counter(); m(x); fwd_s = time.perf_counter() - t1
    h = tr.history
    return dict(architecture=arch, encoder=a.encoder, params_m=sum(p.numel() for p in m.parameters()) / 1e6,
                val_snr_per_epoch=[float(v) for v in h["val_snr"]], val_loss_per_epoch=[float(v) for v in h["val_loss"]],
                best_val_snr=float(tr.best_val_snr), final_val_loss=float(h["val_loss"][-1]), train_s=train_s,
                forward_640x832_s=fwd_s)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="unet,smp_unet,smp_fpn")
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train-size", type=int, default=96)
    ap.add_argument("--val-size", type=int, default=8)
    ap.add_argument("--augment", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    a = ap.parse_args(argv)
    rows = []
    for arch in a.arch.split(","):
        r = run_one(arch.strip(), a); rows.append(r)
        print(f"{r['architecture']:<18} best val_snr {r['best_val_snr']:6.2f} dB  final val_loss {r['final_val_loss']:.3f}  "
              f"train {r['train_s']:6.0f} s  forward 640x832 {r['forward_640x832_s']:.2f} s  {r['params_m']:.1f} M params", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip()
    res = dict(benchmark="arch", command=" ".join(["python benchmarks/bench_arch.py", *(argv or sys.argv[1:])]),
               commit=commit, date=time.strftime("%Y-%m-%d"), machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
               torch_threads=torch.get_num_threads(), rows=rows)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out / "arch.json").write_text(json.dumps(res, indent=1))
    print("\n| architecture | best val_snr (dB) | val_snr per epoch | final val_loss | train s | CPU forward 640x832 s | M params |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['architecture']} | {r['best_val_snr']:.2f} | {' / '.join(f'{v:.2f}' for v in r['val_snr_per_epoch'])} | "
              f"{r['final_val_loss']:.3f} | {r['train_s']:.0f} | {r['forward_640x832_s']:.2f} | {r['params_m']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
