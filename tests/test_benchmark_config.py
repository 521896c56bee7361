"""flowlab.benchmark.config: the default grid, parsing of dims and methods (the schema's fields with messages that
name the bad item), the named grids of the Timing page and BenchConfig's checks."""
import pytest

from flowlab import benchmark as B
from flowlab import presets
from flowlab.budget import session_budget
from flowlab.benchmark import config as C
from flowlab.gradients import METHODS, REGISTRY
from flowlab.settings import TIMING


@pytest.mark.parametrize("dims, msg", [("", "at least one"), ("64, abc", "not a whole number"), ("1", "out of range"),
                                       ("64, 12.5", "not a whole number"), ([70000], "out of range")])
def test_bad_dims(dims, msg):
    with pytest.raises(ValueError, match=msg):
        B.parse_dims(dims)


def test_parse_and_defaults():
    assert B.parse_dims("256, 64;128 64") == (64, 128, 256)
    assert B.parse_methods("exact, relative") == ("relative", "exact")
    assert B.default_dims() == (64, 88, 128, 184, 256, 360, 512, 728, 1024, 1448, 2048, 2896, 4096)
    assert B.default_dims(512, 32, 1) == (32, 64, 128, 256, 512)
    with pytest.raises(ValueError, match="smallest D"):
        B.default_dims(32, 64)
    with pytest.raises(ValueError, match="one point per doubling"):
        B.default_dims(512, 32, 0)


def test_parse_dims_keeps_the_schema_bounds():
    f = TIMING["dims"]
    assert (B.MIN_DIM, B.MAX_DIM) == (f.lo, f.hi)
    assert B.parse_dims([f.lo, f.hi]) == (f.lo, f.hi)
    with pytest.raises(ValueError, match=f"Dimension {int(f.hi) + 1} is out of range"):
        B.parse_dims([f.hi + 1])
    with pytest.raises(ValueError, match=f"at most {f.max_items} dimensions"):
        B.parse_dims(range(8, 8 + 8 * (f.max_items + 1), 8))
    with pytest.raises(ValueError, match="'inf' is not a whole number"):
        B.parse_dims("64, inf")


def test_parse_methods_orders_by_cost_and_takes_aliases():
    assert B.parse_methods(["exact", "snf", "relative", "exact"]) == ("relative", "self_normalizing", "exact")
    assert B.parse_methods(METHODS) == B.ALL_METHODS
    orders = [REGISTRY[m].order for m in B.ALL_METHODS]
    assert orders == sorted(orders) and set(B.ALL_METHODS) == set(METHODS)
    with pytest.raises(ValueError, match="Unknown gradient method 'fast'"):
        B.parse_methods("relative, fast")
    with pytest.raises(ValueError, match="Choose at least one gradient method"):
        B.parse_methods(" , ")


def test_named_grids():
    assert B.GRIDS["live: 512 – 2896"] == presets.TIMING_LIVE_DIMS == presets.TIMING["dims"]
    assert B.GRIDS["recorded CPU: 64 – 4096"] == B.default_dims()
    assert B.GRIDS["large: 128 – 16384 (GPU)"] == B.default_dims(16384, 128, 1)
    assert B.grid_name((512, 728, 1024, 1448, 2048, 2896)) == "live: 512 – 2896"
    assert B.grid_name((64, 128, 256, 512)) == B.CUSTOM
    assert B.dims_text((64, 128)) == "64, 128" and B.parse_dims(B.dims_text(B.default_dims())) == B.default_dims()
    assert B.default_max_dim("cpu") == 4096 and B.default_max_dim("gpu") == 16384


@pytest.mark.parametrize("kw, msg", [(dict(methods=("fast",)), "Unknown gradient method"),
                                     (dict(methods=()), "at least one"), (dict(batch=0), "batch size must be between"),
                                     (dict(repeats="x"), "number of repeats must be a whole number"),
                                     (dict(cap=0), "time cap per point must be between"),
                                     (dict(fit_range=(10, 5)), "window"), (dict(mem_limit=-1), "memory limit")])
def test_bad_config(kw, msg):
    with pytest.raises(ValueError, match=msg):
        B.BenchConfig(**{"dims": (8,), **kw})


def test_config_defaults_and_settings():
    c = B.BenchConfig()
    assert c.dims == B.default_dims() and c.methods == B.ALL_METHODS  # the command line's full run
    for k in C.CHECKED:
        assert getattr(c, k) == presets.TIMING[k], k
    c = B.BenchConfig(dims="8, 4", methods="exact,relative", batch="10", cap="2.5")
    assert c.dims == (4, 8) and c.methods == ("relative", "exact") and c.batch == 10 and c.cap == 2.5
    assert c.settings() == {"dims": (4, 8), "methods": ("relative", "exact"), "batch": 10, "layers": 2,
                            "repeats": presets.TIMING["repeats"], "cap": 2.5, "seed": 0}
    assert TIMING.check(c.settings()) == c.settings()  # the page's URL round trip holds every run
    assert B.BenchConfig(**c.settings()) == c


def test_the_live_default_grid():
    """The recorded CPU grid's D from the slope window's start, enough of them for the stability rule, and the last
    one the largest of that grid at which the default methods still fit the default session budget (512 MB, 300 s),
    estimated from the shapes alone."""
    live = presets.TIMING_LIVE_DIMS
    assert set(live) <= set(B.default_dims()) and live[0] == presets.TIMING_FIT_RANGE[0]
    assert len(live) >= presets.TIMING_STABLE["dims"]
    budget = session_budget({}, available=None, platform="cpu")
    assert (budget.memory, budget.seconds) == (512 * 2 ** 20, 300.0)
    config = B.BenchConfig(dims=live, methods=presets.TIMING["methods"])
    est = B.grid_estimate(config, budget.memory)
    assert B.grid_refusal(config, budget) is None
    assert (est.runs, est.too_big, est.too_slow) == (len(live) * len(config.methods), 0, 0)
    assert est.seconds < budget.seconds and est.peak_bytes <= budget.memory
    bigger = [d for d in B.default_dims() if d > live[-1]][0]
    assert B.grid_estimate(B.BenchConfig(dims=(bigger,), methods=config.methods), budget.memory).too_big == 1
