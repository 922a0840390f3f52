"""Every python block of MLFLOW_GUIDE.md runs unmodified, in the guide's order, against a real MLflow server.

The only change to a block is the server's address: the guide says http://localhost:5050, the test's server listens
on a free port. Before the blocks run, the test does what the guide's bash section says (a training run, here a tiny
one), so that the guide's file paths exist as they would for a user: `configs/config.yaml` (the package's YAML
defaults, linked from the repository's top level) and `outputs/predictions.csv` (written by training). Where a block
uses names the guide leaves to the reader (`my_model`, `predictions`, `targets`, `epoch`, `train_model`, an active
`tracker`), the test provides them just before that block.
"""
import contextlib, io, os, re
from pathlib import Path
import numpy as np, pytest, torch
import mlflow
from mlflow import MlflowClient
from omegaconf import OmegaConf
from conftest import ROOT, MlflowServer

pytestmark = pytest.mark.slow   # runs every block of the guide against a server (make test runs it; make test-fast skips it)

GUIDE_URI = "http://localhost:5050"


def guide_path():
    for p in (ROOT / "MLFLOW_GUIDE.md", ROOT / "docs" / "MLFLOW_GUIDE.md", ROOT.parent / "shared" / "MLFLOW_GUIDE.md"):
        if p.exists(): return p
    return None


def python_blocks(text: str) -> list:
    return [m.group(1) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    "A server of the guide's own: its blocks register `ecg_digitizer_v1` and friends, which other tests register too."
    srv = MlflowServer(tmp_path_factory.mktemp("guide_server")).start()
    yield srv.uri
    srv.stop()


@pytest.fixture
def home(tmp_path, monkeypatch):
    "A user's working folder: the repository's `configs` link, a fresh work dir, no inherited tracking URI."
    monkeypatch.setenv("ECGD_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    from ecg_digitization.training.config import CONFIG_DIR
    (tmp_path / "configs").symlink_to(CONFIG_DIR)
    yield tmp_path
    while mlflow.active_run(): mlflow.end_run()


def test_every_python_block_of_the_guide_runs(mlflow_server, home):
    guide = guide_path()
    if guide is None: pytest.skip("MLFLOW_GUIDE.md not found next to the checkout (../shared/MLFLOW_GUIDE.md)")
    blocks = python_blocks(guide.read_text())
    assert len(blocks) >= 10, f"expected the guide's python blocks, found {len(blocks)}"
    from ecg_digitization.training import fit
    from ecg_digitization.utils import MLflowExperimentTracker, compute_snr_per_lead
    # the guide's "Training with MLflow Tracking", small: it registers ecg_digitizer_signalsavants and writes outputs/
    res = fit(overrides=["approach=signalsavants", "training.epochs=1", "data.train_size=4", "data.val_size=2",
                         "data.image_height=128", "data.image_width=160", "model.decoder_channels=[32,16,16,8,8]",
                         f"mlflow.tracking_uri={mlflow_server}", "mlflow.tags.gpu=rtx5090"])
    assert (home / "outputs" / "predictions.csv").exists() and (home / "configs" / "config.yaml").exists()
    rng = np.random.default_rng(0)
    targets = rng.standard_normal((5000, 12)).astype(np.float32)
    ns = {"my_model": torch.nn.Sequential(torch.nn.Linear(8, 12)), "train_losses": [1.0, 0.6], "val_losses": [1.1, 0.7],
          "model": res.model, "cfg": OmegaConf.create({"approach": {"method": "signalsavants"}}),   # the training run's
          "predictions": targets + 0.05 * rng.standard_normal(targets.shape).astype(np.float32), "targets": targets,
          "compute_snr_per_lead": compute_snr_per_lead, "epoch": 5, "custom_data": [1.0, 3.0, 2.0],
          "train_model": lambda lr, tracker: tracker.log_metric("val_loss", lr)}
    ran = []
    for i, code in enumerate(blocks):
        t = ns.get("tracker")
        if "mlflow_tracker.log_model" in code:                 # "Registering Models": the tracker of a training run
            ns["mlflow_tracker"] = MLflowExperimentTracker(mlflow_server, run_name="registering").start_run()
        if re.search(r"(?<![\w.])tracker\.log_", code) and "start_run(" not in code and t and not t.active:
            t.start_run(run_name=f"guide_block_{i}")           # blocks that log into "your" run need one open
        if "start_run(run_name=\"hyperparameter_search\"" in code and t and t.active: t.end_run()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code.replace(GUIDE_URI, mlflow_server), f"<guide block {i}>", "exec"), ns)
        ran.append((i, out.getvalue()))
        if "mlflow_tracker" in ns and ns["mlflow_tracker"].active: ns["mlflow_tracker"].end_run()
    if ns["tracker"].active: ns["tracker"].end_run()
    assert len(ran) == len(blocks)
    printed = "".join(o for _, o in ran)
    assert mlflow_server in printed                           # "Runs Not Appearing": get_tracking_uri() is the server
    assert "params.model.encoder_name" in printed and "resnet18" in printed   # the search example found the training run
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("ecg-digitization").experiment_id])
    arts = {a.path for r in runs for a in client.list_artifacts(r.info.run_id)}
    assert {"configs", "results", "custom_metric.png", "loss_curves.png"} <= arts
    assert any("snr_V6" in r.data.metrics for r in runs)       # best practice 3, logged at epoch 5
    assert client.get_registered_model("ecg_digitizer_signalsavants").latest_versions
