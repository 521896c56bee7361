"""What machine this is: the device label the pages show, the system information every recorded result carries, and
the one result writer of ``benchmarks/`` (JSON stamped with device, versions, load and date)."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import jax
import jaxlib
import numpy as np

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def platform_name() -> str:
    """'cpu', 'gpu' or 'tpu': where JAX runs."""
    return jax.devices()[0].platform


def device_label() -> str:
    """e.g. 'CPU · cpu' or 'GPU · NVIDIA H200'."""
    d = jax.devices()[0]
    return f"{d.platform.upper()} · {getattr(d, 'device_kind', '') or d.platform}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def thread_settings() -> dict:
    """How many threads XLA may use here: CPU count, the process's CPU affinity, XLA_FLAGS and the BLAS/OpenMP
    variables (XLA's CPU backend uses all cores of the affinity set unless XLA_FLAGS restricts it)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    flags = os.environ.get("XLA_FLAGS", "")
    single = "xla_cpu_multi_thread_eigen=false" in flags.replace(" ", "")
    return {"cpu_count": os.cpu_count(), "affinity_cpus": affinity, "XLA_FLAGS": flags,
            "env": {k: os.environ[k] for k in THREAD_VARS if k in os.environ},
            "xla_threads": "single-threaded Eigen (XLA_FLAGS)" if single else f"all ({affinity or os.cpu_count()})"}


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: its CPU affinity, capped by a container's CPU quota (cgroup v2 cpu.max or v1
    cfs_quota_us / cfs_period_us, rounded up), which os.cpu_count() ignores."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = None
    try:
        q, period = (cgroup / "cpu.max").read_text().split()[:2]
        quota = None if q == "max" else int(q) / int(period)
    except (OSError, ValueError):
        try:
            q = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
            quota = q / int((cgroup / "cpu" / "cpu.cfs_period_us").read_text()) if q > 0 else None
        except (OSError, ValueError, ZeroDivisionError):
            quota = None
    if quota is not None and quota > 0:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def system_info() -> dict:
    dev = jax.devices()[0]
    kind = getattr(dev, "device_kind", "") or dev.platform
    name = cpu_model() if dev.platform == "cpu" else kind
    return {"device": f"{dev.platform.upper()} · {name}", "platform": dev.platform, "device_kind": kind,
            "device_count": jax.device_count(), "cpu_model": cpu_model(), "jax": jax.__version__,
            "jaxlib": jaxlib.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "threads": thread_settings()}


def memory_available() -> int | None:
    """Bytes free for new work: the accelerator's free memory, else the host's MemAvailable; None if unknown."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001 - not every backend implements it
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return proc_bytes("/proc/meminfo", "MemAvailable")


def proc_bytes(path: str, key: str) -> int | None:
    """The "key: N kB" line of a Linux /proc file in bytes; None where the file or the line is missing."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_bytes(pid: int | None = None) -> int | None:
    """Resident memory of process ``pid`` (this one by default) in bytes; None where /proc does not say."""
    return proc_bytes(f"/proc/{pid or 'self'}/status", "VmRSS")


def device_peak_bytes() -> int | None:
    """Accelerator only: the process-wide peak of device memory in use so far."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001
        return None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def jsonable(o):
    """``o`` with numpy scalars as Python numbers and non-finite floats as None (strict JSON)."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    return o


def stamp() -> dict:
    """What every recorded result carries: the machine, the versions, the load average and the date."""
    return {"system": system_info(), "load_average": load_average(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_result(path, payload: dict) -> Path:
    """Write ``payload`` as JSON to ``path`` (folders made as needed) with ``stamp()`` under the key "recorded"; a
    path ending in .jsonl gets one line appended instead.  Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = jsonable({**payload, "recorded": stamp()})
    if path.suffix == ".jsonl":
        with open(path, "a") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")
    else:
        path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    return path


def read_results(path, max_bytes: int = 4 << 20) -> list[dict]:
    """The records of a ``write_result`` file (a .jsonl: one per line; a .json: one), [] when it is missing; a file
    over ``max_bytes`` or a line that is not JSON is skipped rather than read."""
    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            return []
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in (text.splitlines() if path.suffix == ".jsonl" else [text]):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


COMPILE_CACHE_MAX_BYTES = 2 << 30  # least recently used entries are deleted beyond this


def enable_compile_cache(path, max_bytes: int = COMPILE_CACHE_MAX_BYTES,
                         min_compile_s: float = 0.5) -> str | None:
    """Turn on JAX's persistent compilation cache in ``path`` (made if missing) with a size cap, so a second session
    or a restarted server skips compile time.  Returns None, or one sentence saying why there is no cache (the folder
    cannot be written): the app then runs without one.  A server-wide setting, called once when the server starts."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".flowlab_write_test"):  # own name: replicas share it
            pass
    except OSError as e:
        return (f"No compilation cache: the folder {str(path)[:80]!r} cannot be written ({e.strerror or e}); "
                "every session compiles its own training steps.")
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_s))
    if importlib.util.find_spec("filelock") is not None:  # JAX needs it to keep the cap; without it, no cap
        jax.config.update("jax_compilation_cache_max_size", int(max_bytes))
    return None
