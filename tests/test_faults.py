"""Faults during training: interrupts end KILLED and resume identically; non-finite losses end FAILED with a reason."""
import os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pytest, torch, mlflow

from ecg_digitization.training import fit, Callback, NonFiniteLossError, TrainingInterrupted, load_checkpoint

pytestmark = pytest.mark.slow   # trains, kills and resumes real runs (make test runs it; make test-fast skips it)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["approach=baseline", "data.train_size=8", "data.val_size=2", "data.image_height=128", "data.image_width=160",
        "training.batch_size=4", "training.epochs=3", "data.style=default"]


def overrides(tmp, name):
    return TINY + [f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db", f"training.checkpoint_dir={tmp}/{name}"]


class SigtermAfter(Callback):
    "Sends this process SIGTERM after epoch `n` — what a scheduler's preemption does."
    def __init__(self, n): self.n = n
    def on_epoch_end(self, tr, ev):
        if tr.epoch == self.n: os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.5)


def test_sigterm_ends_killed_and_resume_matches_uninterrupted(tmp_path):
    full = fit(overrides=overrides(tmp_path, "full"))
    with pytest.raises(KeyboardInterrupt):
        fit(overrides=overrides(tmp_path, "cut"), callbacks=[SigtermAfter(1)])
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    cut = [r for r in client.search_runs([client.get_experiment_by_name("ecg-digitization").experiment_id])
           if r.data.params.get("training.checkpoint_dir", "").endswith("/cut")][0]
    assert cut.info.status == "KILLED" and "SIGTERM" in cut.data.tags["interrupted"]
    assert "checkpoints" in {a.path for a in client.list_artifacts(cut.info.run_id)}
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1

    resumed = fit(overrides=overrides(tmp_path, "cut") + [f"training.resume={cut.info.run_id}"])
    assert resumed.run_id == cut.info.run_id
    assert client.get_run(cut.info.run_id).info.status == "FINISHED"
    for key in ("train_loss", "val_loss", "val_snr"):
        a = [m.value for m in sorted(client.get_metric_history(full.run_id, key), key=lambda m: m.step)]
        b = [m.value for m in sorted(client.get_metric_history(cut.info.run_id, key), key=lambda m: m.step)]
        assert len(a) == len(b) == 3, key
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=key)
    for (k, v), (k2, v2) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(v, v2, rtol=1e-4, atol=1e-5, msg=k)


class PoisonWeights(Callback):
    "Makes the first layer's weights NaN, as a numerical blow-up would."
    def on_fit_start(self, tr):
        with torch.no_grad(): next(tr.module.parameters()).fill_(float("nan"))


def test_non_finite_loss_fails_run_with_reason(tmp_path):
    with pytest.raises(NonFiniteLossError):
        fit(overrides=overrides(tmp_path, "nan"), callbacks=[PoisonWeights()])
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.search_runs([client.get_experiment_by_name("ecg-digitization").experiment_id])[0]
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == "non_finite_loss" and "nan" in run.data.tags["error"].lower()


def test_cli_sigterm_then_resume(tmp_path):
    args = [sys.executable, "-m", "ecg_digitization.train", *overrides(tmp_path, "cli"), "training.epochs=2"]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_id, lines = None, []
    for line in p.stdout:
        lines.append(line)
        if line.startswith("MLflow run "): run_id = line.split()[2]
        if line.startswith("epoch 1/2: train_loss"): p.send_signal(signal.SIGTERM); break
    rest, _ = p.communicate(timeout=120)
    assert p.returncode != 0 and run_id, "".join(lines) + rest
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_run(run_id).info.status == "KILLED"
    r = subprocess.run([sys.executable, "-m", "ecg_digitization.train", *overrides(tmp_path, "cli"), "training.epochs=2", f"training.resume={run_id}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"MLflow run {run_id} (resumed from epoch 1)" in r.stdout
    assert client.get_run(run_id).info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [1, 2]
