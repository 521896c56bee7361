"""Run FlowLab for a class on one machine: K Streamlit replicas on consecutive ports behind nginx, pinned by cookie.

    python deploy/run_local.py --replicas 4 --port 8080          # then open http://<this machine>:8080
    python deploy/run_local.py --render --replicas 3 --upstream-host 'app{i}' --port 80   # print the nginx site only

One Streamlit process keeps every session, and its training worker threads, in its own memory, and serves all of
them from one Python interpreter; K processes use K cores for the page redraws. nginx (deploy/nginx/flowlab.conf)
sends each browser to the replica its cookie names. Everything nginx writes (pid, logs, temp files) and every
replica's log goes to the run folder (--run-dir, else a new temporary one), so no root is needed on a port above
1023. Ctrl-C (or SIGTERM) stops nginx, then the replicas. Standard library only.

Settings of each replica (environment variables, read by flowlab/runtime/scheduler.py and app.py):
  FLOWLAB_TRAIN_SLOTS   chunks one replica trains at the same moment (--train-slots; default: the machine's cores
                        but one, shared out between the replicas, at least 1 each)
  FLOWLAB_MAX_TRAINERS  sessions one replica lets train at once; later ones wait in line (--max-trainers)
  FLOWLAB_JAX_CACHE     the JAX compilation cache folder, shared by all replicas so each compiled chunk is compiled
                        once (--jax-cache; default: the app's own, .jax_cache/ in the repository)
Values already in the environment are kept unless an option overrides them.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SITE = os.path.join(HERE, "nginx", "flowlab.conf")
STANDALONE = os.path.join(HERE, "nginx", "standalone.conf")
STREAMLIT_CONFIG = os.path.join(ROOT, ".streamlit", "config.toml")
HEALTH = "/_stcore/health"
COOKIE = "flowlab_replica"  # the cookie flowlab.conf pins a browser with (also ingress-nginx's, in deploy/k8s/)
REPLICA_HEADER = "X-FlowLab-Replica"  # the response header naming the replica that answered


# ---- the nginx configuration ----------------------------------------------------------------------------------------
def replicas(k: int, first_port: int = 8501, host: str = "127.0.0.1") -> list[tuple[str, str, int]]:
    """(name, host, port) of K replicas on consecutive ports. ``host``: one host for all, a pattern with ``{i}``
    (1..K, e.g. 'app{i}'), or K comma-separated hosts (replicas on several machines)."""
    if k < 1:
        raise ValueError(f"--replicas must be at least 1, not {k}")
    if not 0 < first_port <= 65536 - k:
        raise ValueError(f"--first-port {first_port} leaves no room for {k} ports; give a port from 1 to {65536 - k}")
    hosts = host.split(",") if "," in host else [host.format(i=i) for i in range(1, k + 1)]
    if len(hosts) != k:
        raise ValueError(f"{len(hosts)} comma-separated hosts for {k} replicas; give one host per replica")
    return [(f"r{i}", h.strip(), first_port + i - 1) for i, h in enumerate(hosts, start=1)]


def max_body(config_path: str = STREAMLIT_CONFIG) -> str:
    """nginx's client_max_body_size: Streamlit's server.maxUploadSize (MB, default 200) plus 1 MB, because the
    upload PUT wraps the file in a multipart envelope and Streamlit itself checks only the file's size."""
    with open(config_path, "rb") as f:
        mb = tomllib.load(f).get("server", {}).get("maxUploadSize", 200)
    return f"{int(mb) + 1}m"


def _fill(template: str, fields: dict) -> str:
    for key, value in fields.items():
        template = template.replace("{{" + key + "}}", value)
    if "{{" in template:
        raise ValueError(f"unfilled field in the nginx template near {template[template.index('{{'):][:30]!r}")
    return template


def render_site(reps: list[tuple[str, str, int]], listen: str = "8080", body: str | None = None,
                access_log: str = "/var/log/nginx/access.log") -> str:
    """deploy/nginx/flowlab.conf for these replicas. Replicas are told apart by port ($upstream_addr holds an
    address, not a host name), so the ports must differ. The access log's default is Debian's (and the nginx
    image's, where it goes to stdout)."""
    ports = [p for _, _, p in reps]
    if len(set(ports)) != len(ports):
        raise ValueError(f"each replica needs its own port, got {ports}")
    addr = {name: f"{host}:{port}" for name, host, port in reps}
    pinned = []
    for name, _, _ in reps:
        backups = "".join(f"    server {a} backup;\n" for n, a in addr.items() if n != name)
        pinned.append(f"upstream flowlab_{name} {{\n    server {addr[name]};\n{backups}}}")
    with open(SITE) as f:
        template = f.read()
    head = (f"# Rendered from deploy/nginx/flowlab.conf for {len(reps)} replica(s) by deploy/run_local.py: edit the "
            f"template, not this file.\n")
    return head + _fill(template, {
        "pool_map": "\n".join(f"    {name} flowlab_{name};" for name, _, _ in reps),
        "served_map": "\n".join(f"    ~:{port}$ {name};" for name, _, port in reps),
        "servers_any": "\n".join(f"    server {a};" for a in addr.values()),
        "servers_pinned": "\n\n".join(pinned),
        "listen": listen,
        "max_body": body or max_body(),
        "access_log": access_log,
    })


def render_standalone(run_dir: str) -> str:
    """deploy/nginx/standalone.conf: the main configuration that includes run_dir/flowlab.conf."""
    with open(STANDALONE) as f:
        return _fill(f.read(), {"run_dir": run_dir})


def free_ports(n: int, host: str = "127.0.0.1", tries: int = 200) -> int:
    """The first of n consecutive free ports (for --first-port 0 and the tests)."""
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(20000, 60000 - n)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError(f"no {n} consecutive free ports found on {host}")


def find_nginx() -> str | None:
    """nginx on PATH, else Debian's /usr/sbin/nginx (not on a normal user's PATH)."""
    found = shutil.which("nginx")
    return found or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def write_nginx_config(run_dir: str, reps, listen: str) -> list[str]:
    """Write the configuration into run_dir; the nginx arguments (before -t or -g) that use it."""
    os.makedirs(os.path.join(run_dir, "tmp"), exist_ok=True)
    # nginx started as root runs its workers as an unprivileged user, which must reach the temp folders it creates
    os.chmod(run_dir, 0o755)
    with open(os.path.join(run_dir, "flowlab.conf"), "w") as f:
        f.write(render_site(reps, listen, access_log=os.path.join(run_dir, "access.log")))
    conf = os.path.join(run_dir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(render_standalone(run_dir))
    return ["-p", run_dir, "-c", conf, "-e", os.path.join(run_dir, "error.log")]


# ---- the processes -------------------------------------------------------------------------------------------------
def replica_env(k: int, train_slots: int | None, max_trainers: int | None, jax_cache: str | None) -> dict:
    """The environment of every replica: the caller's, with the FLOWLAB_* options applied."""
    env = dict(os.environ)
    if train_slots is None and "FLOWLAB_TRAIN_SLOTS" not in env:
        train_slots = max(1, ((os.cpu_count() or 2) - 1) // k)  # the scheduler's own rule, shared out between K
    for name, value in (("FLOWLAB_TRAIN_SLOTS", train_slots), ("FLOWLAB_MAX_TRAINERS", max_trainers),
                        ("FLOWLAB_JAX_CACHE", jax_cache)):
        if value is not None:
            env[name] = str(value)
    return env


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + HEALTH, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _stop(procs: list[subprocess.Popen]):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _tail(path: str, n: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _on_stop(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    nginx = args.nginx or find_nginx()
    if not nginx:
        print("run_local: nginx is not installed (Debian: apt-get install -y nginx); --nginx PATH names another.",
              file=sys.stderr)
        return 2
    first = args.first_port or free_ports(args.replicas, args.replica_address)
    reps = replicas(args.replicas, first, args.replica_address)
    run_dir = os.path.abspath(args.run_dir or tempfile.mkdtemp(prefix="flowlab-run-"))
    os.makedirs(run_dir, exist_ok=True)
    nginx_args = write_nginx_config(run_dir, reps, f"{args.bind}:{args.port}")
    check = subprocess.run([nginx, *nginx_args, "-t", "-q"], capture_output=True, text=True)
    if check.returncode != 0:
        print(f"run_local: the nginx configuration in {run_dir} does not load:\n{check.stderr}", file=sys.stderr)
        return 2
    env = replica_env(args.replicas, args.train_slots, args.max_trainers, args.jax_cache)
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's background job starts with it ignored
        signal.signal(sig, _on_stop)
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for name, host, port in reps:
            log = os.path.join(run_dir, f"replica-{name}.log")
            logs.append(log)
            with open(log, "w") as out:  # the child keeps its own copy of the file descriptor
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                     "--server.port", str(port), "--server.address", host], cwd=ROOT, env=env,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.time() + args.start_timeout
        waiting = list(zip(reps, procs, logs))
        while waiting:
            (name, host, port), proc, log = waiting[0]
            if healthy(f"http://{host}:{port}"):
                waiting.pop(0)
            elif proc.poll() is not None or time.time() > deadline:
                print(f"run_local: replica {name} (port {port}) did not start; the end of {log}:\n{_tail(log)}",
                      file=sys.stderr)
                return 1
            else:
                time.sleep(0.3)
        procs.append(subprocess.Popen([nginx, *nginx_args, "-g", "daemon off;"], start_new_session=True))
        print(f"FlowLab: http://{args.bind}:{args.port}/ (replicas on ports {', '.join(str(p) for _, _, p in reps)}, "
              f"FLOWLAB_TRAIN_SLOTS={env.get('FLOWLAB_TRAIN_SLOTS')} each; logs in {run_dir}). "
              f"Ctrl-C stops everything.", flush=True)
        labels = [f"replica {name} (port {port})" for name, _, port in reps] + ["nginx"]
        while True:
            for label, p in zip(labels, procs):
                if p.poll() is not None:
                    print(f"run_local: {label} exited with code {p.returncode}; stopping (logs in {run_dir}).",
                          file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave processes behind
            signal.signal(sig, signal.SIG_IGN)
        _stop(procs[len(reps):][::-1] + procs[:len(reps)])  # nginx first: no new requests reach a stopping replica


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replicas", "-k", type=int, default=2, help="number of Streamlit processes K (default 2)")
    p.add_argument("--port", type=int, default=8080, help="the port nginx listens on, the class's URL (default 8080)")
    p.add_argument("--bind", default="0.0.0.0", help="the address nginx listens on (default 0.0.0.0: the network)")
    p.add_argument("--first-port", type=int, default=8501,
                   help="replica i listens on first-port + i - 1 (default 8501; 0: any free consecutive ports)")
    p.add_argument("--replica-address", default="127.0.0.1",
                   help="address the replicas listen on (default 127.0.0.1: reachable through nginx only)")
    p.add_argument("--train-slots", type=int, help="FLOWLAB_TRAIN_SLOTS of each replica")
    p.add_argument("--max-trainers", type=int, help="FLOWLAB_MAX_TRAINERS of each replica")
    p.add_argument("--jax-cache", help="FLOWLAB_JAX_CACHE, shared by all replicas")
    p.add_argument("--run-dir", help="folder for logs and nginx's files (default: a new temporary folder)")
    p.add_argument("--nginx", help="the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)")
    p.add_argument("--start-timeout", type=float, default=120, help="seconds to wait for the replicas (120)")
    p.add_argument("--render", action="store_true",
                   help="print the nginx site configuration (http context) for these replicas and exit")
    p.add_argument("--upstream-host", default=None,
                   help="with --render: the replicas' host, a pattern with {i} (e.g. app{i}) or one host per "
                        "replica, comma-separated; default --replica-address")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.render:
            reps = replicas(args.replicas, args.first_port, args.upstream_host or args.replica_address)
            sys.stdout.write(render_site(reps, str(args.port)))
            return 0
        return run(args)
    except ValueError as e:
        print(f"run_local: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
