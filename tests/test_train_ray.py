"""`python -m ecg_digitization.train_ray` on a local Ray cluster (2 CPU workers) against a real MLflow server: DDP
training, a Tune sweep with a crashing trial, resuming a sweep after its driver was killed, and user errors."""
import os, signal, socket, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest

pytestmark = pytest.mark.slow   # Ray Train/Tune on a local cluster: minutes (make test runs it; make test-fast skips it)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TINY = ["data.train_size=8", "data.val_size=4", "data.image_height=128", "data.image_width=160",
        "training.batch_size=4", "model.decoder_channels=[32,16,16,8,8]"]
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def cli(args, home, timeout=600, **kw):
    "Run the CLI with ECGD_HOME=home (checkpoints, Ray storage) and no inherited Ray/MLflow addresses."
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env["ECGD_HOME"] = str(home)
    return subprocess.run([PY, "-m", "ecg_digitization.train_ray", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, **kw)


def cli_here(args, home, monkeypatch, capfd):
    """The same command run in this process, for user errors that end before any training: what it prints and returns
    is what `python -m` prints and exits with (test_typos... keeps one real subprocess call), without an interpreter
    start and the torch/Ray/MLflow imports (about 8 s on 2 busy cores) for each check."""
    from types import SimpleNamespace
    from ecg_digitization.scale.train import main
    for k in [k for k in os.environ if k.startswith(("MLFLOW_", "RAY_ADDRESS"))]: monkeypatch.delenv(k)
    monkeypatch.setenv("ECGD_HOME", str(home))
    capfd.readouterr()
    code = main(list(args))
    out, err = capfd.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def client(uri):
    import mlflow
    return mlflow.MlflowClient(uri)


def runs_named(uri, name):
    c = client(uri)
    exp = c.get_experiment_by_name("ecg-digitization")
    return [] if exp is None else c.search_runs([exp.experiment_id], f"attributes.run_name = '{name}'")


def children(uri, parent_id):
    c = client(uri)
    exp = c.get_run(parent_id).info.experiment_id
    return c.search_runs([exp], f"tags.mlflow.parentRunId = '{parent_id}'")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


# ---------------------------------------------------------------- mode=train: DDP on 2 workers, one MLflow run
DDP = ["mode=train", "ray.num_workers=2", "approach=baseline", "training.epochs=2", *TINY]


@pytest.fixture(scope="module")
def ddp_run(mlflow_server, tmp_path_factory):
    "Two epochs of DDP on 2 workers, registered; also the uninterrupted twin of the resume test's crashed run."
    home = tmp_path_factory.mktemp("ray_train")
    r = cli([*DDP, f"mlflow.tracking_uri={mlflow_server}", "mlflow.run_name=ray_ddp"], home)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    runs = runs_named(mlflow_server, "ray_ddp")
    assert len(runs) == 1, [x.info.run_id for x in runs]
    return client(mlflow_server), runs[0].info.run_id, r.stdout, home


def test_ddp_one_finished_run_with_params_and_tags(ddp_run):
    c, run_id, out, _ = ddp_run
    assert f"run id: {run_id}" in out and "registered model: models:/ecg_digitizer_baseline/" in out
    run = c.get_run(run_id)
    assert run.info.status == "FINISHED"
    p, t = run.data.params, run.data.tags
    assert p["approach.method"] == "baseline" and p["model.encoder_name"] == "resnet18" and p["training.epochs"] == "2"
    assert p["ray.num_workers"] == "2" and p["data.train_size"] == "8" and p["mlflow.experiment_name"] == "ecg-digitization"
    assert t["approach"] == "baseline" and t["model"] == "resnet18" and t["project"] == "physionet-ecg-2024"
    assert t["entry_point"] == "ray" and t["device"] == "cpu" and "error" not in t


def test_ddp_metrics_every_epoch(ddp_run):
    c, run_id, _, _ = ddp_run
    for key in ("train_loss", "val_loss", "val_snr", "best_val_loss", *(f"snr_{l}" for l in LEADS)):
        hist = c.get_metric_history(run_id, key)
        assert [m.step for m in hist] == [1, 2], key
        assert all(np.isfinite(m.value) for m in hist), key


def test_ddp_artifacts_registered_model_and_ray_checkpoint(ddp_run, mlflow_server, tmp_path):
    c, run_id, _, home = ddp_run
    top = {a.path for a in c.list_artifacts(run_id)}
    assert {"best_model.pt", "loss_curves.png", "snr_per_lead.png", "signal_comparison.png", "configs", "final_model"} <= top, top
    assert [a.path for a in c.list_artifacts(run_id, "configs")] == ["configs/config.yaml"]
    versions = [v for v in c.search_model_versions("name='ecg_digitizer_baseline'") if v.run_id == run_id]
    assert len(versions) == 1
    import mlflow, torch
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pytorch.load_model(f"models:/ecg_digitizer_baseline/{versions[0].version}")
    assert model.approach == "baseline"
    ckpts = list((home / "runs" / "ray" / f"train_{run_id}").glob("checkpoint_*/last.pt"))
    assert len(ckpts) == 1, ckpts   # reported through ray.train.report (num_to_keep=1)
    st = torch.load(ckpts[0], weights_only=True)
    # 8 pages, batch 4, two ranks of 4 pages each: one step per epoch (single-process training takes two)
    assert st["epoch"] == 2 and st["step"] == 2 and st["run_id"] == run_id


# ---------------------------------------------------------------- mode=train: a crash after epoch 1 of 2, then training.resume
def test_train_resume_continues_the_run_like_an_uninterrupted_one(ddp_run, mlflow_server, tmp_path):
    args = [*DDP, f"mlflow.tracking_uri={mlflow_server}", "mlflow.register_model=false"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env["ECGD_HOME"] = str(tmp_path)
    with open(tmp_path / "driver.log", "w") as log:
        proc = subprocess.Popen([PY, "-m", "ecg_digitization.train_ray", *args, "mlflow.run_name=ray_crashed"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    c = client(mlflow_server)
    def epochs_logged():
        runs = runs_named(mlflow_server, "ray_crashed")
        return len(c.get_metric_history(runs[0].info.run_id, "val_loss")) if runs else 0
    try:   # crash the driver and its local Ray cluster once rank 0 has logged epoch 1 (after writing its last.pt)
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None and not epochs_logged(): time.sleep(0.2)
        assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
    finally:   # the whole tree at once: Ray workers outlive their raylet for a while and would go on training
        import psutil
        tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)] if proc.poll() is None else []
        for pid in tree:
            try: os.kill(pid, signal.SIGKILL)
            except ProcessLookupError: pass
        proc.wait(60)
    runs = runs_named(mlflow_server, "ray_crashed")
    assert len(runs) == 1 and runs[0].info.status == "RUNNING", [(x.info.status, x.data.tags) for x in runs]
    run_id = runs[0].info.run_id
    assert [m.step for m in c.get_metric_history(run_id, "val_loss")] == [1], "epoch 2 finished before the kill"

    # the saved config (2 workers, 2 epochs, tiny data) comes from the checkpoint; training.epochs=2 keeps the preset's 3 out
    r = cli(["mode=train", f"training.resume={run_id}", "training.epochs=2", f"mlflow.tracking_uri={mlflow_server}"], tmp_path)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert f"run id: {run_id}" in r.stdout and f"MLflow run {run_id} (resumed from epoch 1)" in r.stdout + r.stderr
    assert [x.info.run_id for x in runs_named(mlflow_server, "ray_crashed")] == [run_id]   # the same run, no second one
    run = c.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["entry_point"] == "ray" and run.data.tags["resumed_from_epoch"] == "1"
    assert {"best_model.pt", "loss_curves.png", "final_model", "configs"} <= {a.path for a in c.list_artifacts(run_id)}

    full = ddp_run[1]   # the same config run without a crash (registering its model changes no metric)
    for key in ("train_loss", "val_loss", "val_snr", "best_val_loss", "lr", "snr_II"):
        got, want = ({m.step: m.value for m in c.get_metric_history(i, key)} for i in (run_id, full))
        assert len(c.get_metric_history(run_id, key)) == 2 and sorted(got) == sorted(want) == [1, 2], (key, got, want)
        # same weights, optimizer, schedule and data order, so losses agree to float-sum order. The official SNR quantises
        # both signals to 256 levels to align them: an output that moves by 1e-7 can cross a level edge, which moves an
        # SNR near 0 dB by up to ~1e-4 dB (measured: 2.6e-5 dB on snr_II); a different run differs by far more than 1e-3
        assert got == pytest.approx(want, rel=1e-6, abs=1e-3 if "snr" in key else 1e-9), key


# ---------------------------------------------------------------- mode=tune: parent + nested children, a crashing trial
@pytest.fixture(scope="module")
def sweep(mlflow_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("ray_tune")
    # lr=1e30 passes config validation but blows the weights up at the first step: a trial that crashes at run time
    r = cli(["mode=tune", "ray.search=grid", "ray.num_samples=1", "ray.search_space={training.lr:[0.001,0.003,1e30]}",
             "ray.max_concurrent_trials=2", "ray.name=sweep_test", "approach=baseline", "training.epochs=1",
             f"mlflow.tracking_uri={mlflow_server}", "mlflow.run_name=ray_sweep", *TINY], home)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    runs = runs_named(mlflow_server, "ray_sweep")
    assert len(runs) == 1
    return client(mlflow_server), runs[0], r.stdout


def test_sweep_parent_and_nested_children(sweep, mlflow_server):
    c, parent, out = sweep
    assert parent.info.status == "FINISHED" and parent.data.tags["entry_point"] == "ray-tune"
    kids = children(mlflow_server, parent.info.run_id)
    assert len(kids) == 3
    by_lr = {float(k.data.params["training.lr"]): k for k in kids}
    assert set(by_lr) == {0.001, 0.003, 1e30}
    for lr in (0.001, 0.003):
        k = by_lr[lr]
        assert k.info.status == "FINISHED" and k.data.tags["entry_point"] == "ray-tune" and "ray_trial_id" in k.data.tags
        assert {"best_model.pt", "loss_curves.png", "snr_per_lead.png", "final_model"} <= {a.path for a in c.list_artifacts(k.info.run_id)}
        assert [m.step for m in c.get_metric_history(k.info.run_id, "val_snr")] == [1]


def test_crashing_trial_fails_its_run_and_the_sweep_continues(sweep, mlflow_server):
    c, parent, out = sweep
    bad = [k for k in children(mlflow_server, parent.info.run_id) if float(k.data.params["training.lr"]) == 1e30][0]
    assert bad.info.status == "FAILED" and "became" in bad.data.tags["error"], bad.data.tags.get("error")   # loss/gradient became inf or nan
    assert parent.data.metrics["n_trials"] == 3 and parent.data.metrics["n_failed_trials"] == 1


def test_sweep_best_trial_tagged_and_registered(sweep, mlflow_server):
    c, parent, out = sweep
    kids = {k.info.run_id: k for k in children(mlflow_server, parent.info.run_id) if k.info.status == "FINISHED"}
    best = parent.data.tags["best_run_id"]
    assert best in kids and kids[best].data.tags["ray_trial_id"] == parent.data.tags["best_trial"]
    assert parent.data.metrics["val_snr"] == pytest.approx(max(k.data.metrics["val_snr"] for k in kids.values()))
    versions = [v for v in c.search_model_versions("name='ecg_digitizer_baseline'") if v.run_id == best]
    assert len(versions) == 1 and parent.data.tags["best_model_uri"] == f"models:/ecg_digitizer_baseline/{versions[0].version}"
    assert {"configs", "tune"} <= {a.path for a in c.list_artifacts(parent.info.run_id)}
    assert f"best trial: {parent.data.tags['best_trial']}" in out


# ---------------------------------------------------------------- resuming a sweep whose driver was killed
@pytest.mark.slow   # about 2-4 min on 2 busy cores: two driver starts; deselect with -m "not slow"
def test_tune_resumes_after_driver_crash(mlflow_server, tmp_path):
    args = ["mode=tune", "ray.search=grid", "ray.num_samples=1", "ray.search_space={training.lr:[0.002]}",
            "ray.name=crash_test", "approach=baseline", "training.epochs=2", f"mlflow.tracking_uri={mlflow_server}",
            "mlflow.run_name=ray_crash", *TINY]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env["ECGD_HOME"] = str(tmp_path)
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen([PY, "-m", "ecg_digitization.train_ray", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    sweep_dir = tmp_path / "runs" / "ray" / "crash_test"
    try:   # kill the driver (and its local Ray cluster) once the first trial has checkpointed epoch 1
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None and not list(sweep_dir.glob("trial_*/checkpoint_000000")):
            time.sleep(1)
        assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        assert list(sweep_dir.glob("trial_*/checkpoint_000000")), "no trial checkpoint within 400 s"
        time.sleep(3)   # Tune snapshots the sweep state right after a checkpoint
    finally:
        os.killpg(proc.pid, signal.SIGKILL); proc.wait(60)
    parent = runs_named(mlflow_server, "ray_crash")[0]
    assert parent.info.status == "RUNNING"

    r = cli(["mode=tune", "ray.resume=true", f"mlflow.tracking_uri={mlflow_server}"], tmp_path)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    c = client(mlflow_server)
    assert c.get_run(parent.info.run_id).info.status == "FINISHED"
    assert runs_named(mlflow_server, "ray_crash")[0].info.run_id == parent.info.run_id   # no second parent
    kids = children(mlflow_server, parent.info.run_id)
    assert [k.info.status for k in kids] == ["FINISHED"], [(k.info.status, k.data.tags) for k in kids]
    assert kids[0].data.tags.get("resumed_from_epoch") == "1", "the interrupted trial did not continue its own run"
    # epochs after the last Tune checkpoint run again after a resume, so epoch 2 may have been logged before the kill too
    steps = [m.step for m in c.get_metric_history(kids[0].info.run_id, "val_loss")]
    assert steps[0] == 1 and set(steps) == {1, 2}, steps
    assert {"best_model.pt", "loss_curves.png", "final_model"} <= {a.path for a in c.list_artifacts(kids[0].info.run_id)}
    assert c.get_run(parent.info.run_id).data.tags["best_run_id"] == kids[0].info.run_id


# ---------------------------------------------------------------- user errors: one line, exit 2, no RUNNING run
def test_unreachable_ray_address_fails_fast_without_a_run(mlflow_server, tmp_path, monkeypatch, capfd):
    t0 = time.time()
    port = free_port()
    r = cli_here([f"ray.address=127.0.0.1:{port}", f"mlflow.tracking_uri={mlflow_server}", "mlflow.run_name=ray_unreachable", *TINY],
                 tmp_path, monkeypatch, capfd)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"no Ray cluster answers at ray.address=127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert time.time() - t0 < 60
    assert runs_named(mlflow_server, "ray_unreachable") == []


def test_more_workers_than_cpus_fails_before_starting(mlflow_server, tmp_path, monkeypatch, capfd):
    n = (os.cpu_count() or 2) + 1
    r = cli_here([f"ray.num_workers={n}", f"mlflow.tracking_uri={mlflow_server}", "mlflow.run_name=ray_too_many"], tmp_path,
                 monkeypatch, capfd)
    assert r.returncode == 2 and f"needs {n} CPUs" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert runs_named(mlflow_server, "ray_too_many") == []
    import torch
    if not torch.cuda.is_available():
        r = cli_here(["ray.use_gpu=true", "ray.num_workers=1"], tmp_path, monkeypatch, capfd)
        assert r.returncode == 2 and "needs 1 GPUs" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_typos_and_bad_search_space_list_valid_choices(tmp_path, monkeypatch, capfd):
    r = cli(["ray.num_workrs=2"], tmp_path, timeout=120)   # the real `python -m` command, one line on stderr
    assert r.returncode == 2 and "ray.num_workers" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    r = cli_here(["mode=sweep"], tmp_path, monkeypatch, capfd)
    assert r.returncode == 2 and "train, tune" in r.stderr
    r = cli_here(["mode=tune", "ray.search_space.training.lrr=[1]"], tmp_path, monkeypatch, capfd)
    assert r.returncode == 2 and "training.lr" in r.stderr and "Traceback" not in r.stderr
    r = cli_here(["mode=tune", "ray.search_space={data.layout:[3x4+II,bogus]}"], tmp_path, monkeypatch, capfd)   # before any trial
    assert r.returncode == 2 and "bogus" in r.stderr and "Traceback" not in r.stderr


def test_missing_data_folder_on_the_workers_fails_the_run(mlflow_server, tmp_path):
    r = cli(["data.source=challenge", f"data.path={tmp_path / 'nope'}", f"mlflow.tracking_uri={mlflow_server}",
             "mlflow.run_name=ray_no_data", "training.epochs=1", "ray.num_workers=1", *TINY], tmp_path)
    last = r.stderr.strip().splitlines()[-1]   # the workers' tracebacks come first, the one-line error last
    assert r.returncode == 2 and last.startswith("error: ") and "nope: folder not found" in last, r.stderr[-3000:]
    runs = runs_named(mlflow_server, "ray_no_data")
    assert len(runs) == 1 and runs[0].info.status == "FAILED" and "nope" in runs[0].data.tags["error"]
