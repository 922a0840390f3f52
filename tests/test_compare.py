"""RunComparison driven from Python against real MLflow stores: the session's MLflow server (runs with and without
metrics, artifacts and registered models, a run still training, deleted runs, a server that dies) and a sqlite
store holding 300 runs (paged queries, histories fetched only for the rows shown)."""
import html, socket, time, warnings
import numpy as np
import pandas as pd
import pytest
import ipywidgets as W
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from ecg_digitization.compare import RunComparison, Comparison, RunStore, log_example_runs
from ecg_digitization.core import LEADS

EXP = "compare-test"            # own experiment and model name: the server is shared with tests/test_train.py
MODEL = "ecg_digitizer_cmptest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@pytest.fixture(scope="module")
def store(mlflow_server, tmp_path_factory):
    """Runs in experiment EXP of the live server: 4 example runs (one tagged), one with no metrics or artifacts,
    one still RUNNING after 2 epochs, one with a really logged and registered PyTorch model."""
    import torch
    from ecg_digitization.tracking import MLflowExperimentTracker
    client = MlflowClient(mlflow_server)
    ex = log_example_runs(mlflow_server, n=4, experiment=EXP, rng=np.random.default_rng(1))
    client.set_tag(ex[2], "study", "ablation")
    exp_id = client.get_experiment_by_name(EXP).experiment_id
    bare = client.create_run(exp_id, run_name="bare_run", tags={"approach": "baseline"}).info.run_id
    client.log_batch(bare, params=[Param("model.encoder_name", "resnet50"), Param("training.lr", "0.01")])
    client.set_terminated(bare)
    running = client.create_run(exp_id, run_name="still_training", tags={"approach": "signalsavants", "model": "resnet18"}).info.run_id
    client.log_batch(running, metrics=[Metric(k, v + e, 0, e) for e in (1, 2) for k, v in (("val_snr", 3.0), ("train_loss", -0.5))],
                     params=[Param("model.encoder_name", "resnet18")])
    with MLflowExperimentTracker(mlflow_server, EXP, run_name="with_model", tags={"approach": "cmptest", "model": "resnet18"}) as t:
        t.log_params({"model": {"encoder_name": "resnet18"}, "training": {"lr": 0.001}})
        for e in (1, 2): t.log_metrics({"val_snr": 4.0 * e, "val_loss": 1.0 / e, "best_val_loss": 1.0 / e}, step=e)
        t.log_model(torch.nn.Linear(2, 2), "final_model", registered_model_name=MODEL)
        model_run = t.run_id
    return dict(uri=mlflow_server, client=client, ex=ex, bare=bare, running=running, model_run=model_run, exp_id=exp_id)


@pytest.fixture
def cmp(store):
    return RunComparison(store["uri"], experiment=EXP)


@pytest.mark.slow
def test_table_lists_every_run_sorted_by_val_snr_with_missing_values(cmp, store):
    df = cmp.runs_table()
    assert set(df.run_id) >= set(store["ex"]) | {store["bare"], store["running"], store["model_run"]}
    snr = df.val_snr.dropna()
    assert list(snr) == sorted(snr, reverse=True) and df.val_snr.iloc[-1:].isna().all()   # missing val_snr last
    bare = df.set_index("run_id").loc[store["bare"]]
    assert np.isnan(bare.val_snr) and np.isnan(bare.best_val_loss) and bare.encoder == "resnet50"
    run = df.set_index("run_id").loc[store["running"]]
    assert run.status == "RUNNING" and run.duration_s > 0 and run.best_val_snr == 5.0
    ex0 = df.set_index("run_id").loc[store["ex"][0]]
    assert ex0.best_val_snr == max(m.value for m in store["client"].get_metric_history(store["ex"][0], "val_snr"))
    assert "bare_run" in cmp.table_html.value and "—" in cmp.table_html.value and "RUNNING" in cmp.table_html.value
    assert cmp.experiment_dd.value == EXP and EXP in cmp.experiment_dd.options
    assert "select runs to compare" in cmp.status.value
    assert isinstance(cmp.widget, W.VBox) and "application/vnd.jupyter.widget-view+json" in cmp.widget._repr_mimebundle_()


def test_filters_approach_encoder_tags_and_mlflow_filter(cmp, store):
    assert {"baseline", "signalsavants", "cmptest"} <= {v for _, v in cmp.approach_dd.options}
    cmp.approach_dd.value = "signalsavants"
    assert set(cmp.runs_table().approach) == {"signalsavants"} and len(cmp.runs_select.options) == 3
    cmp.encoder_dd.value = "resnet18"
    assert set(cmp.runs_table().run_id) == {store["ex"][3], store["running"]}
    cmp.approach_dd.value, cmp.encoder_dd.value = "", ""
    cmp.tags_text.value = "study=ablation"
    assert list(cmp.runs_table().run_id) == [store["ex"][2]]
    cmp.tags_text.value = "=oops"
    assert "key=value" in cmp.status.value and "✖" in cmp.status.value
    cmp.tags_text.value = ""
    cmp.filter_text.value = "metrics.val_snr > 8"      # applied by the server
    df = cmp.runs_table()
    assert len(df) >= 1 and (df.val_snr > 8).all() and store["bare"] not in set(df.run_id)
    cmp.filter_text.value = "metrics.val_snr >> 8"
    assert "is not valid" in cmp.status.value
    cmp.filter_text.value = ""
    assert store["bare"] in set(cmp.runs_table().run_id)


def test_selecting_runs_renders_every_view(cmp, store):
    a, b = store["ex"][0], store["ex"][1]
    cmp.runs_select.value = (a, b)
    assert "2 run(s) selected" in cmp.status.value
    lines = cmp.figures["curves"].axes[0].get_lines()
    assert len(lines) == 2 and cmp.metric_dd.value == "val_snr" and cmp.curves_img.value[:4] == b"\x89PNG"
    assert list(lines[0].get_xdata()) == [1, 2, 3, 4, 5]
    assert {f"snr_{l}" for l in LEADS} | {"train_loss", "val_loss"} <= set(cmp.metric_dd.options)
    cmp.metric_dd.value = "train_loss"
    assert cmp.figures["curves"].axes[0].get_ylabel() == "train_loss"
    assert "approach.method" in cmp.diff_html.value and "model.encoder_name" in cmp.diff_html.value
    assert "training.batch_size" not in cmp.diff_html.value          # same value in both runs
    assert [len(c) for c in cmp.figures["snr"].axes[0].containers] == [12, 12]
    boxes = cmp.signals_box.children
    assert len(boxes) == 2 and all(isinstance(bx.children[1], W.Image) and bx.children[1].value[:4] == b"\x89PNG" for bx in boxes)
    assert [o[1] for o in cmp.alias_run_dd.options] == [a, b]
    # the same views as plain methods
    diff = cmp.param_diff()
    assert isinstance(diff, pd.DataFrame) and set(diff.index) == {"approach.method", "model.encoder_name"}
    for fig in (cmp.metric_curves(metric="val_loss"), cmp.snr_bars(), cmp.signal_comparisons()):
        assert isinstance(fig, Figure)
    assert [len(ax.images) for ax in cmp.signal_comparisons().axes] == [1, 1]


def test_missing_metrics_and_artifacts_are_shown_as_missing(cmp, store):
    ex, bare = store["ex"][0], store["bare"]
    cmp.select([ex, bare])
    ax = cmp.figures["curves"].axes[0]
    assert len(ax.get_lines()) == 1 and "not logged by bare_run" in ax.get_title()
    assert len(cmp.figures["snr"].axes[0].containers) == 1 and "none logged by bare_run" in cmp.figures["snr"].axes[0].get_title()
    assert "— no signal_comparison.png" in cmp.signals_box.children[1].children[1].value
    assert "—" in cmp.diff_html.value                                 # params the bare run never logged
    assert pd.isna(cmp.param_diff().loc["training.batch_size", "bare_run"])
    cmp.select([bare])
    assert "no selected run logged 'val_snr'" in cmp.figures["curves"].axes[0].texts[0].get_text()
    assert "select two or more runs" in cmp.diff_html.value and "✖" not in cmp.status.value


def test_alias_button_points_champion_at_the_runs_model_version(cmp, store):
    client, run = store["client"], store["model_run"]
    cmp.select([store["ex"][0], run])
    cmp.alias_run_dd.value = run
    cmp.alias_text.value = "champion"
    cmp.alias_btn.click()
    mv = client.get_model_version_by_alias(MODEL, "champion")
    assert mv.run_id == run and f"now points at version {mv.version}" in cmp.status.value
    assert f"models:/{MODEL}@champion" in cmp.status.value
    cmp.alias_run_dd.value = store["ex"][0]; cmp.alias_btn.click()
    assert "has no registered model version" in cmp.status.value and "✖" in cmp.status.value
    cmp.alias_run_dd.value = run; cmp.alias_text.value = "v3"; cmp.alias_btn.click()
    assert "not allowed" in cmp.status.value
    assert set(cmp.set_alias(run, "staging").aliases) == {"champion", "staging"}   # the plain method


def test_refresh_picks_up_new_epochs_and_new_runs(cmp, store):
    client, run = store["client"], store["running"]
    cmp.select([run])
    assert list(cmp.figures["curves"].axes[0].get_lines()[0].get_xdata()) == [1, 2]
    client.log_metric(run, "val_snr", 6.0, step=3)
    new = client.create_run(store["exp_id"], run_name="fresh_run", tags={"approach": "baseline"}).info.run_id
    client.log_metric(new, "val_snr", 1.0, step=1)
    cmp.refresh_btn.click()
    assert cmp.selection == (run,)
    assert list(cmp.figures["curves"].axes[0].get_lines()[0].get_xdata()) == [1, 2, 3]
    assert new in {v for _, v in cmp.runs_select.options}
    client.set_terminated(run)
    cmp.refresh()
    assert cmp.runs_table().set_index("run_id").loc[run, "status"] == "FINISHED"
    client.delete_run(new)


def test_deleted_run_is_reported_and_dropped(cmp, store):
    client = store["client"]
    doomed = client.create_run(store["exp_id"], run_name="doomed_run").info.run_id
    client.log_metric(doomed, "val_snr", 2.0, step=1)
    cmp.refresh()
    cmp.select([doomed, store["ex"][0]])
    client.delete_run(doomed)
    cmp.refresh_btn.click()
    assert "doomed_run" in cmp.status.value and "is deleted" in cmp.status.value
    assert cmp.selection == (store["ex"][0],) and doomed not in {v for _, v in cmp.runs_select.options}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert len(cmp.snr_bars([doomed, store["ex"][0]]).axes[0].containers) == 1
    assert any("is deleted" in str(x.message) for x in w)


def test_empty_and_unknown_experiments(store):
    store["client"].create_experiment("compare-empty")
    cmp = RunComparison(store["uri"], experiment="compare-empty")
    assert "has no runs yet" in cmp.status.value and cmp.runs_select.options == () and cmp.table_html.value == ""
    cmp = RunComparison(store["uri"], experiment="no-such-experiment")
    assert "no experiment 'no-such-experiment'" in html.unescape(cmp.status.value) and EXP in cmp.status.value
    assert cmp.experiment_dd.value is None and cmp.runs_select.options == ()
    cmp.experiment_dd.value = EXP                                    # pick one: the runs load
    assert len(cmp.runs_select.options) >= 7 and "✖" not in cmp.status.value


def test_unreachable_server_is_a_message_not_a_traceback(tmp_path):
    t0 = time.time()
    cmp = RunComparison(f"http://127.0.0.1:{free_port()}", timeout_s=3)
    assert "is not reachable" in cmp.status.value and "make mlflow-server" in cmp.status.value
    cmp.refresh_btn.click()
    assert "is not reachable" in cmp.status.value and time.time() - t0 < 60
    cmp = RunComparison(f"sqlite:///{tmp_path}/missing.db")
    assert "no MLflow database" in cmp.status.value and not (tmp_path / "missing.db").exists()


@pytest.mark.slow
def test_server_dying_mid_session_then_coming_back(store, mlflow_server_proc):
    cmp = RunComparison(store["uri"], experiment=EXP, timeout_s=3)
    n = len(cmp.runs_select.options)
    mlflow_server_proc.kill()
    try:
        cmp.refresh_btn.click()
        assert "is not reachable" in cmp.status.value
        cmp.select([store["ex"][1]])        # listed runs and cached histories still render; the image needs the server
        assert len(cmp.figures["curves"].axes[0].get_lines()) == 1
        assert "is not reachable" in cmp.status.value and "1 run(s) selected" in cmp.status.value
    finally:
        mlflow_server_proc.ensure_running()
    cmp.refresh_btn.click()
    assert len(cmp.runs_select.options) == n and "✖" not in cmp.status.value


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """300 example runs in a sqlite store (sqlite syncing off while writing them: 3x faster, test data only)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    def fast(conn, _): conn.execute("PRAGMA synchronous=OFF")
    uri = f"sqlite:///{tmp_path_factory.mktemp('many')}/mlflow.db"
    event.listen(Engine, "connect", fast)
    try: ids = log_example_runs(uri, n=300, experiment="many", artifacts=False, epochs=3, rng=np.random.default_rng(2))
    finally: event.remove(Engine, "connect", fast)
    return uri, ids


class Counting:
    "Counts calls of chosen MlflowClient methods."
    def __init__(self, client, names):
        self.n = dict.fromkeys(names, 0)
        for name in names:
            f = getattr(client, name)
            def wrapped(*a, _f=f, _name=name, **k):
                self.n[_name] += 1; return _f(*a, **k)
            setattr(client, name, wrapped)


@pytest.mark.slow
def test_300_runs_paged_and_histories_only_for_shown_rows(many):
    uri, ids = many
    cmp = RunComparison(uri, experiment="many", page_size=64, rows=25)
    assert cmp.store.pages == 5 and len(cmp.runs_select.options) == 300
    assert {v for _, v in cmp.runs_select.options} == set(ids) and "25 of 300 runs" in cmp.table_html.value
    assert len(cmp.store._hist) == 25                                  # best val_snr of the 25 rows shown, nothing more
    calls = Counting(cmp.store.client, ["search_runs", "get_metric_history", "get_run"])
    cmp.approach_dd.value = "baseline"                                   # local filter: no query, 25 new rows at most
    assert len(cmp.runs_select.options) == 150 and calls.n["search_runs"] == 0 and calls.n["get_metric_history"] <= 25
    cmp.select([ids[0], ids[2]])                                         # even runs are baseline
    before = calls.n["get_metric_history"]
    cmp.metric_dd.value = "val_loss"                                     # two histories for two selected runs
    assert calls.n["get_metric_history"] - before == 2
    cmp.metric_dd.value = "train_loss"
    assert calls.n["get_metric_history"] - before == 4
    cmp.metric_dd.value = "val_loss"                                     # cached: no new request
    assert calls.n["get_metric_history"] - before == 4
    cmp.refresh_btn.click()
    assert calls.n["search_runs"] == 5 and calls.n["get_run"] == 0
    df = cmp.runs_table(limit=300)
    assert len(df) == 150 and df.val_snr.is_monotonic_decreasing
    capped = RunComparison(uri, experiment="many", page_size=50, max_runs=120)
    assert len(capped.runs_select.options) == 120 and "listing the first 120 runs" in capped.status.value
    every = RunStore(uri).search("many")
    top = sorted(every, key=lambda r: -r.data.metrics["val_snr"])[:120]
    assert {v for _, v in capped.runs_select.options} == {r.info.run_id for r in top}   # the cap keeps the best runs


def test_headless_comparison_without_widgets(many):
    uri, ids = many
    c = Comparison(uri, experiment="many", page_size=100)
    c.filter_string = "params.`training.lr` = '0.001' and tags.approach = 'signalsavants'"
    runs = c.load()
    assert c.store.pages == 1 and len(runs) == 75
    c.encoder = "resnet34"
    c.select([r.info.run_id for r in c.runs()[:3]])
    assert set(c.param_diff().index) == set() and len(c.metric_curves().axes[0].get_lines()) == 3
    with pytest.raises(ValueError, match="runs not listed"): c.select(["nope"])
    with pytest.raises(ValueError, match="3 runs are selected"): c.set_alias()


@pytest.mark.slow
def test_compare_notebook_runs_headless_with_papermill(store, tmp_path):
    "`papermill nbs/compare.ipynb out.ipynb -p tracking_uri … -p experiment …`: its kernelspec and parameters are kept."
    import json, subprocess, sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "compare_out.ipynb"
    r = subprocess.run([sys.executable, "-m", "papermill", str(root / "nbs" / "compare.ipynb"), str(out),
                        "-p", "tracking_uri", store["uri"], "-p", "experiment", EXP], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    text = json.dumps(json.loads(out.read_text())["cells"])
    assert "with_model" in text and "still_training" in text       # runs_table printed the store's runs
