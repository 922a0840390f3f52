"""End-to-end: papermill and CLI training against a real MLflow server, checked through the MLflow client."""
import json, os, subprocess, sys, signal, time
from pathlib import Path
import numpy as np
import pytest

pytestmark = pytest.mark.slow   # papermill and CLI training runs (make test runs it; make test-fast skips it)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TINY = ["data.train_size=8", "data.val_size=2", "data.image_height=128", "data.image_width=160",
        "training.batch_size=4", "model.decoder_channels=[32,16,16,8,8]"]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow server of this module's own, so registered-model versions (`/1`) are this module's."""
    from conftest import MlflowServer
    srv = MlflowServer(tmp_path_factory.mktemp("train_server")).start()
    yield srv.uri
    srv.stop()


def papermill(out, uri, env=None, **params):
    args = [PY, "-m", "papermill", "nbs/train.ipynb", str(out), "-k", "python3"]
    for k, v in params.items():
        args += ["-p", k, str(v)] if not isinstance(v, list) else ["-y", json.dumps({k: v})]
    return subprocess.run(args + ["-p", "tracking_uri", uri], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="module")
def nb_run(mlflow_server, tmp_path_factory):
    """One real papermill execution of nbs/train.ipynb (signalsavants, 2 epochs) into the live server."""
    out = tmp_path_factory.mktemp("nb") / "train_out.ipynb"
    r = papermill(out, mlflow_server, approach="signalsavants", epochs=2, run_name="pm_signalsavants",
                  overrides=TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    import mlflow
    mlflow.set_tracking_uri(mlflow_server)
    runs = mlflow.search_runs(experiment_names=["ecg-digitization"], filter_string="tags.approach = 'signalsavants'",
                              order_by=["metrics.val_snr DESC"])
    run = runs[runs["tags.mlflow.runName"] == "pm_signalsavants"].iloc[0]
    return mlflow.MlflowClient(mlflow_server), run.run_id, out


def test_search_runs_finds_the_run_with_guide_columns(nb_run, mlflow_server):
    import mlflow
    mlflow.set_tracking_uri(mlflow_server)
    runs = mlflow.search_runs(experiment_names=["ecg-digitization"], filter_string="tags.approach = 'signalsavants'",
                              order_by=["metrics.val_snr DESC"])
    assert {"run_id", "metrics.val_snr", "params.model.encoder_name"} <= set(runs.columns)
    assert nb_run[1] in set(runs.run_id)


def test_run_params_tags_status(nb_run):
    client, run_id, _ = nb_run
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert p["approach.method"] == "signalsavants" and p["model.encoder_name"] == "resnet18"
    assert p["training.epochs"] == "2" and p["data.train_size"] == "8" and p["mlflow.experiment_name"] == "ecg-digitization"
    t = run.data.tags
    assert t["approach"] == "signalsavants" and t["model"] == "resnet18" and t["project"] == "physionet-ecg-2024"
    assert t["entry_point"] == "papermill"


def test_metric_histories_have_every_epoch(nb_run):
    client, run_id, _ = nb_run
    for key in ("train_loss", "val_loss", "val_snr", "best_val_loss"):
        hist = client.get_metric_history(run_id, key)
        assert [m.step for m in hist] == [1, 2], key
        assert all(np.isfinite(m.value) for m in hist), key
    best = [m.value for m in client.get_metric_history(run_id, "best_val_loss")]
    assert best[1] <= best[0]
    for lead in ("I", "II", "aVR", "V6"):
        assert client.get_metric_history(run_id, f"snr_{lead}"), lead


def test_artifacts_and_executed_notebook(nb_run, tmp_path):
    client, run_id, out = nb_run
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"best_model.pt", "loss_curves.png", "snr_per_lead.png", "signal_comparison.png", "configs", "notebook",
            "final_model"} <= top, top
    assert [a.path for a in client.list_artifacts(run_id, "configs")] == ["configs/config.yaml"]
    nbs = [a.path for a in client.list_artifacts(run_id, "notebook")]
    assert nbs == [f"notebook/{out.name}"]
    local = client.download_artifacts(run_id, nbs[0], str(tmp_path))
    nb = json.loads(Path(local).read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "val_snr" in text and "run id: " + run_id in text   # outputs of the training cells are in the artifact
    import yaml
    cfg = yaml.safe_load(Path(client.download_artifacts(run_id, "configs/config.yaml", str(tmp_path))).read_text())
    assert cfg["approach"]["method"] == "signalsavants" and cfg["training"]["epochs"] == 2
    import torch
    st = torch.load(client.download_artifacts(run_id, "best_model.pt", str(tmp_path)), weights_only=True)
    assert st["approach"] == "signalsavants"


@pytest.mark.parametrize("version", ["latest", "1"])
def test_registered_model_loads_and_digitizes(nb_run, mlflow_server, version):
    import mlflow, mlflow.pytorch
    from ecg_digitization.signals import synthesize_ecg
    from ecg_digitization.render import render_ecg
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pytorch.load_model(f"models:/ecg_digitizer_signalsavants/{version}")
    page = render_ecg(synthesize_ecg(np.random.default_rng(3)), dpi=100)
    rec = model.digitize(page.image, fs=500)
    assert rec.signal.shape == (5000, 12) and rec.fs == 500
    assert rec.leads[:3] == ("I", "II", "III")


@pytest.mark.slow   # two papermill executions (about 1-2 min)
def test_papermill_resume_continues_the_same_run(mlflow_server, tmp_path):
    env = {"ECGD_HOME": str(tmp_path)}   # checkpoints of this test's runs
    r = papermill(tmp_path / "first.ipynb", mlflow_server, env, approach="signalsavants", epochs=1, run_name="pm_resume",
                  overrides=TINY + ["mlflow.register_model=false"])
    assert r.returncode == 0, r.stderr[-3000:]
    import mlflow
    client = mlflow.MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("ecg-digitization").experiment_id
    first = client.search_runs([exp], "attributes.run_name = 'pm_resume'")
    assert len(first) == 1 and first[0].info.status == "FINISHED"
    run_id = first[0].info.run_id
    # the string form `-p overrides '["training.resume=<id>"]'`, without the first call's approach (the default is baseline)
    r = papermill(tmp_path / "second.ipynb", mlflow_server, env, epochs=2, overrides=f'["training.resume={run_id}"]')
    assert r.returncode == 0, r.stderr[-3000:]
    assert [x.info.run_id for x in client.search_runs([exp], "attributes.run_name = 'pm_resume'")] == [run_id]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from_epoch"] == "1"
    assert run.data.tags["approach"] == "signalsavants" and run.data.params["approach.method"] == "signalsavants"
    for key in ("train_loss", "val_loss", "val_snr", "best_val_loss"):
        hist = client.get_metric_history(run_id, key)
        assert [m.step for m in hist] == [1, 2] and all(np.isfinite(m.value) for m in hist), key
    assert sorted(a.path for a in client.list_artifacts(run_id, "notebook")) == ["notebook/first.ipynb", "notebook/second.ipynb"]
    text = (tmp_path / "second.ipynb").read_text()
    assert "resumed from epoch 1" in text and "method: signalsavants" in text


def test_unknown_names_fail_at_once_with_valid_ones(mlflow_server, tmp_path):
    t0 = time.time()
    r = papermill(tmp_path / "bad.ipynb", mlflow_server, approach="unet")
    assert r.returncode != 0 and "baseline, signalsavants" in r.stderr + r.stdout
    r = papermill(tmp_path / "bad2.ipynb", mlflow_server, encoder_name="resnet_18")
    assert r.returncode != 0 and "resnet18" in r.stderr + r.stdout
    assert time.time() - t0 < 120


def test_parameters_tag_survives_nbdev_clean(tmp_path):
    import shutil
    nb = tmp_path / "train.ipynb"
    shutil.copy(ROOT / "nbs" / "train.ipynb", nb)
    subprocess.run([str(Path(PY).parent / "nbdev_clean"), "--fname", str(nb)], cwd=ROOT, check=True)
    cells = json.loads(nb.read_text())["cells"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells)


def test_cli_trains_baseline_and_registers(mlflow_server, tmp_path):
    r = subprocess.run([PY, "-m", "ecg_digitization.train", "approach=baseline", "training.epochs=1",
                        f"mlflow.tracking_uri={mlflow_server}", "mlflow.run_name=cli_baseline", *TINY],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "run id: " in r.stdout and "MLflow UI" in r.stdout
    import mlflow
    client = mlflow.MlflowClient(mlflow_server)
    run = client.search_runs([client.get_experiment_by_name("ecg-digitization").experiment_id],
                             "attributes.run_name = 'cli_baseline'")[0]
    assert run.info.status == "FINISHED" and run.data.tags["entry_point"] == "cli"
    mlflow.set_tracking_uri(mlflow_server)
    m = mlflow.pytorch.load_model("models:/ecg_digitizer_baseline/latest")
    assert m.approach == "baseline"


def test_cli_typo_lists_valid_keys():
    r = subprocess.run([PY, "-m", "ecg_digitization.train", "training.lrr=1e-3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "training.lr" in r.stderr and "Traceback" not in r.stderr


def test_cli_cfg_job_prints_resolved_config():
    r = subprocess.run([PY, "-m", "ecg_digitization.train", "approach=signalsavants", "model.encoder_name=resnet50", "--cfg", "job"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "method: signalsavants" in r.stdout and "encoder_name: resnet50" in r.stdout


def test_cli_multirun_gives_one_run_per_job(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    r = subprocess.run([PY, "-m", "ecg_digitization.train", "-m", "training.lr=1e-3,3e-4", "approach=baseline",
                        "training.epochs=1", "data.train_size=4", "data.val_size=2", "mlflow.register_model=false",
                        f"mlflow.tracking_uri={uri}", *TINY[2:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    import mlflow
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("ecg-digitization").experiment_id])
    assert sorted(r.data.params["training.lr"] for r in runs) == ["0.0003", "0.001"]
    assert all(r.info.status == "FINISHED" for r in runs)
