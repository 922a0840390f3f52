"""What users imported before the package was split into subpackages keeps working: every old module path with
every name it exported (`data/api_v0_1.json`), `python -m` for the command-line modules, and MLflow models pickled
at the old module paths (`data/models_v0_1`, saved before the move) load and give the outputs they gave then."""
import importlib, json, subprocess, sys, warnings
from pathlib import Path
import pytest, torch

DATA = Path(__file__).parent / "data"
API = json.loads((DATA / "api_v0_1.json").read_text())

@pytest.mark.parametrize("module", sorted(API))
def test_old_module_path_exports_its_names(module):
    mod = importlib.import_module(f"ecg_digitization.{module}")
    missing = [n for n in API[module] if not hasattr(mod, n)]
    assert not missing, f"ecg_digitization.{module} lost {missing}"

def test_design_names_import_from_their_documented_modules():
    from ecg_digitization.core import EcgRecord, LEADS
    from ecg_digitization.signals import synthesize_ecg, read_record, write_record
    from ecg_digitization.render import render_ecg
    from ecg_digitization.augment import augment
    from ecg_digitization.data import SyntheticEcgDataset, ChallengeFolderDataset
    from ecg_digitization.models import create_model
    from ecg_digitization.metrics import challenge_snr, snr_per_lead
    from ecg_digitization.tracking import MLflowExperimentTracker
    from ecg_digitization.training import fit
    from ecg_digitization.digitize import Digitizer
    from ecg_digitization.utils import MLflowExperimentTracker as T, create_loss_plot
    assert T is MLflowExperimentTracker and callable(create_loss_plot) and len(LEADS) == 12

@pytest.mark.parametrize("module,marker", [("train", "approach"), ("train_ray", "mode=train"), ("digitize", "--out"),
                                           ("data", "generate"), ("tracking", "sync")])
@pytest.mark.slow
def test_python_dash_m_still_runs(module, marker):
    r = subprocess.run([sys.executable, "-m", f"ecg_digitization.{module}", "--help"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert marker in r.stdout, r.stdout[-2000:]

@pytest.mark.parametrize("name", ["baseline", "signalsavants"])
def test_model_pickled_at_old_module_paths_loads(name):
    import mlflow.pytorch
    exp = json.loads((DATA / "models_v0_1" / "expected.json").read_text())[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mlflow.pytorch.load_model(str(DATA / "models_v0_1" / name)).eval()
    from ecg_digitization.models import MODEL_REGISTRY
    assert isinstance(model, MODEL_REGISTRY[name])
    with torch.no_grad(): y = model(torch.load(DATA / "models_v0_1" / "input.pt"))
    y = y if torch.is_tensor(y) else next(iter(y.values())) if isinstance(y, dict) else y[0]
    assert list(y.shape) == exp["shape"]
    assert float(y.double().sum()) == pytest.approx(exp["sum"], rel=1e-5, abs=1e-4)
    assert float(y.double().abs().sum()) == pytest.approx(exp["abs_sum"], rel=1e-5)
