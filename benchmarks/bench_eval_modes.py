"""Why a validation epoch can collapse: after each epoch, the validation loss and official SNR of the same training run
evaluated three ways: the raw weights in eval mode (BatchNorm running statistics), the EMA weights the trainer keeps
(`training.ema_decay`, running statistics averaged too), and the raw weights with BatchNorm using each batch's own
statistics. A collapse that only the first shows comes from the running statistics.

    python benchmarks/bench_eval_modes.py [--epochs 8] [--train-size 128] [--val-size 8] [--lr 2e-3] [--out benchmarks/results]
"""
from __future__ import annotations
import argparse, copy, json, os, platform, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch


def batch_stats(model):
    "A copy of `model` whose BatchNorm layers use the statistics of each batch, even in eval mode."
    m = copy.deepcopy(model)
    bns = [x for x in m.modules() if isinstance(x, torch.nn.modules.batchnorm._BatchNorm)]
    for x in bns: x.track_running_stats, x.running_mean, x.running_var = False, None, None
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=8); ap.add_argument("--train-size", type=int, default=128)
    ap.add_argument("--val-size", type=int, default=8); ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    a = ap.parse_args(argv)
    from ecg_digitization.training.config import compose_config
    from ecg_digitization.training import Trainer, evaluate, Callback
    cfg = compose_config(["approach=signalsavants", f"training.epochs={a.epochs}", f"data.train_size={a.train_size}",
                          f"data.val_size={a.val_size}", "data.augment_strength=0.5", f"training.lr={a.lr}", "training.device=cpu"])
    rows = []
    class Probe(Callback):
        def on_epoch_end(self, tr, ev):
            raw = evaluate(tr.module, tr.val_loader, tr.device, cfg.data.fs)
            bs = evaluate(batch_stats(tr.module), tr.val_loader, tr.device, cfg.data.fs)
            rows.append(dict(epoch=tr.epoch, lr=tr.opt.param_groups[0]["lr"], train_loss=tr.history["train_loss"][-1],
                             raw=(raw.loss, raw.snr), ema=(ev.loss, ev.snr), batch_stats=(bs.loss, bs.snr)))
            r = rows[-1]
            print(f"epoch {r['epoch']}: raw {raw.loss:.3f} / {raw.snr:6.2f} dB   ema {ev.loss:.3f} / {ev.snr:6.2f} dB   "
                  f"batch stats {bs.loss:.3f} / {bs.snr:6.2f} dB", flush=True)
    torch.manual_seed(0)
    Trainer(cfg, [Probe()]).run()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out / "eval_modes.json").write_text(json.dumps(dict(command="python benchmarks/bench_eval_modes.py " + " ".join(argv or sys.argv[1:]),
        commit=commit, date=time.strftime("%Y-%m-%d"), machine=f"{platform.machine()}, {os.cpu_count()} CPUs", rows=rows), indent=1))
    print("\n| epoch | val_loss / SNR, raw weights | EMA weights | raw weights, batch statistics |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['epoch']} | {r['raw'][0]:.3f} / {r['raw'][1]:.2f} dB | {r['ema'][0]:.3f} / {r['ema'][1]:.2f} dB | "
              f"{r['batch_stats'][0]:.3f} / {r['batch_stats'][1]:.2f} dB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
