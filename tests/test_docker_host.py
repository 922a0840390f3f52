"""`make mlflow-server ALLOWED_HOSTS=...`: a client in a Docker container reaches the server as host.docker.internal.

MLflow 3 refuses requests whose Host header it does not allow (403 "Invalid Host header", against DNS rebinding).
The test starts the server with the exact command the Makefile runs and sends the Host header a container sends.
"""
import os, signal, subprocess, sys, time, urllib.error, urllib.request
from pathlib import Path
import pytest
from conftest import ROOT, free_port

pytestmark = pytest.mark.slow   # starts MLflow servers (make test runs it; make test-fast skips it)


def server_command(port, store, allowed=None) -> str:
    "The `mlflow server` line `make mlflow-server` runs, with this test's port, store and python."
    args = ["make", "-s", "-n", "-C", str(ROOT), "mlflow-server", f"PORT={port}", f"MLFLOW_STORE={store}",
            f"BIN={Path(sys.executable).parent}", "STAMP=", *([f"ALLOWED_HOSTS={allowed}"] if allowed else [])]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
    return next(l for l in out.splitlines() if "mlflow server" in l)


def status(port, host, path="/api/2.0/mlflow/experiments/search?max_results=1") -> int:
    "HTTP status of a GET sent to 127.0.0.1:`port` with this Host header (an API call: /health answers every host)."
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=5) as r: return r.status
    except urllib.error.HTTPError as e: return e.code


@pytest.fixture
def start_server(tmp_path):
    "start(allowed) -> port: a server from the Makefile's command; `allowed` may name `{port}`."
    procs = []
    def start(allowed=None):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        cmd = server_command(port, tmp_path, allowed.format(port=port) if allowed else None) + " --workers 1"
        p = subprocess.Popen(cmd, shell=True, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        for _ in range(900):
            if p.poll() is not None: raise RuntimeError(f"mlflow server exited with {p.returncode}: {cmd}")
            try: status(port, f"127.0.0.1:{port}", "/health"); return port
            except OSError: time.sleep(0.2)
        raise RuntimeError(f"mlflow server did not start: {cmd}")
    yield start
    for p in procs:
        try: os.killpg(p.pid, signal.SIGTERM); p.wait(15)
        except ProcessLookupError: pass
        except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL)


def test_docker_host_refused_by_default(start_server):
    port = start_server()                                               # plain `make mlflow-server`
    assert status(port, f"127.0.0.1:{port}") == 200
    assert status(port, f"host.docker.internal:{port}") == 403


def test_allowed_hosts_lets_the_container_in(start_server):
    port = start_server("host.docker.internal:{port},127.0.0.1:{port},localhost:{port}")
    assert status(port, f"host.docker.internal:{port}") == 200
    assert status(port, f"127.0.0.1:{port}") == 200
    assert status(port, f"evil.example:{port}") == 403                  # still refused: anything not listed
