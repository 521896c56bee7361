"""flowlab.budget: the budget from the environment, the analytic estimates (each grows with the setting that drives
it, and bounds XLA's own memory plan from above), the one-sentence refusals of the issue's links and what they
suggest, and the helpers (bisection, sizes, durations, out-of-memory errors)."""
import re

import jax
import jax.numpy as jnp
import pytest

from flowlab import budget as Bu
from flowlab import compare as C
from flowlab import gradients as G
from flowlab.benchmark import BenchConfig, point_cost
from flowlab.compare import jobs as J
from flowlab.flow import FlowSpec
from flowlab.gradients import REGISTRY
from flowlab.settings import COMPARE_ND

GiB, MB = Bu.GiB, Bu.MB
SERVER = Bu.session_budget({}, available=64 * GiB, platform="cpu")  # the defaults, on a machine with room
ISSUE_19 = dict(density=COMPARE_ND, dim=128, layers=20, inits=20, points=20000)  # compare?...&dim=128&layers=20...
ISSUE_192 = dict(density=COMPARE_ND, dim=512, layers=50, inits=20, points=20000)


def one_sentence(text: str) -> bool:
    return text.endswith(".") and text.count(". ") == 0 and "\n" not in text


# ---- the budget --------------------------------------------------------------------------------------------------
def test_server_defaults_and_environment():
    assert (SERVER.memory, SERVER.seconds) == (512 * MB, 300.0)
    assert SERVER.allows(("memory",)) == "this server allows 512 MB per session"
    assert SERVER.allows(("memory", "time")) == "this server allows 512 MB per session and 5 min of compute per job"
    b = Bu.session_budget({"FLOWLAB_SESSION_MEMORY_MB": "1024", "FLOWLAB_JOB_SECONDS": "60"}, available=64 * GiB,
                          platform="cpu")
    assert (b.memory, b.seconds) == (GiB, 60.0) and "1 GiB per session" in b.allows()


@pytest.mark.parametrize("bad", ["", "abc", "-5", "0", "nan", "inf", "1e999", " "])
def test_unreadable_settings_are_ignored(bad):
    b = Bu.session_budget({"FLOWLAB_SESSION_MEMORY_MB": bad, "FLOWLAB_JOB_SECONDS": bad}, available=64 * GiB,
                          platform="cpu")
    assert (b.memory, b.seconds) == (SERVER.memory, SERVER.seconds)


def test_never_more_than_a_fraction_of_the_free_memory():
    b = Bu.session_budget({"FLOWLAB_SESSION_MEMORY_MB": "100000"}, available=4 * GiB, platform="cpu")
    assert b.memory == 2 * GiB and "50% of its free memory" in b.allows()
    g = Bu.session_budget({"FLOWLAB_SESSION_MEMORY_MB": "100000"}, available=10 * GiB, platform="gpu")
    assert g.memory == int(0.85 * 10 * GiB)
    assert Bu.session_budget({}, available=None, platform="cpu").memory == 512 * MB  # free memory unknown


def test_command_line_budget():
    b = Bu.local_budget({}, available=8 * GiB, platform="cpu")
    assert b.memory == 4 * GiB and b.seconds is None and "this machine can give one run" in b.allows()
    b = Bu.local_budget({"FLOWLAB_SESSION_MEMORY_MB": "512", "FLOWLAB_JOB_SECONDS": "120"}, available=8 * GiB,
                        platform="cpu")
    assert (b.memory, b.seconds) == (512 * MB, 120.0) and b.allows(("memory", "time")) == \
        "FLOWLAB_SESSION_MEMORY_MB allows 512 MB and FLOWLAB_JOB_SECONDS allows 2 min of compute"
    assert Bu.local_budget({}, available=None, platform="cpu").memory == Bu.FALLBACK_MEMORY


def test_the_environment_is_read_when_asked(monkeypatch):
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "256")
    monkeypatch.setenv("FLOWLAB_JOB_SECONDS", "30")
    b = Bu.session_budget(available=64 * GiB, platform="cpu")
    assert (b.memory, b.seconds) == (256 * MB, 30.0)
    assert Bu.local_budget(available=64 * GiB, platform="cpu").memory == 256 * MB


# ---- estimates grow as they should ---------------------------------------------------------------------------------
def compare(**kw):
    v = dict(dim=16, layers=4, inits=5, points=2000, methods=("inverse", "relative", "self_normalizing"), iters=500,
             every=1, optimizer="sgd", lambdas=0)
    v.update(kw)
    return Bu.compare_cost(**v)


@pytest.mark.parametrize("key, small, large", [("dim", 16, 64), ("layers", 4, 16), ("inits", 5, 20),
                                               ("points", 2000, 8000), ("lambdas", 1, 6)])
def test_compare_memory_and_time_grow_with_each_size(key, small, large):
    a, b = compare(**{key: small}), compare(**{key: large})
    assert b.bytes > a.bytes and b.seconds > a.seconds


def test_compare_proportions():
    base = compare()
    # activations n·L·N·D dominate: four times the points or the inits is nearly four times the memory
    for key, v in (("points", 8000), ("inits", 20), ("layers", 16)):
        assert 3.0 < compare(**{key: v}).bytes / base.bytes <= 4.05, key
    # time: iterations × the steps, plus the evaluations (every step here)
    assert 1.9 < compare(iters=1000).seconds / base.seconds < 2.05
    assert compare(every=10).seconds < base.seconds and compare(every=10).bytes < base.bytes  # a shorter history
    # Adam's two moments: more memory, same work
    assert compare(optimizer="adam").bytes > base.bytes
    # the λ sweep trains the self-normalizing flow on inits × λs members
    assert compare(lambdas=4).bytes >= 0.9 * compare(inits=20, methods=("self_normalizing",)).bytes
    # each method adds its step; the exact / explicit-inverse methods add D³ work that the relative one lacks
    assert compare(methods=("relative",)).seconds < base.seconds
    for m in ("exact", "inverse"):
        few = dict(dim=512, points=50, every=500)  # steps only: every evaluation has a slogdet
        assert compare(methods=(m,), **few).seconds > 3 * compare(methods=("relative",), **few).seconds, m


def test_timing_point_grows_with_d_layers_batch_and_cubic_methods_grow_faster():
    cfg = BenchConfig(dims=(64,))
    for m in REGISTRY:
        b1, t1 = point_cost(m, 1024, cfg)
        b2, t2 = point_cost(m, 2048, cfg)
        assert b2 > 3.5 * b1 and t2 > t1, m  # the D×D weights: four times the memory per doubling
        assert point_cost(m, 1024, BenchConfig(dims=(64,), layers=8))[0] > 3.5 * b1, m
        assert point_cost(m, 1024, BenchConfig(dims=(64,), batch=10_000))[0] > b1, m
    ratio = {m: point_cost(m, 8192, cfg)[1] / point_cost(m, 4096, cfg)[1] for m in REGISTRY}
    assert ratio["exact"] > 6 and ratio["inverse"] > 6 and ratio["autodiff_jacobian"] > 6  # O(D³)
    assert ratio["relative"] < 4.5 and ratio["self_normalizing"] < 4.5  # O(B·D²)


def test_every_method_has_an_estimate():
    assert set(Bu.GRADIENT) == set(REGISTRY)
    assert set(Bu.STEP) == set(G.TRAIN_METHODS)


# ---- estimates bound XLA's own plans -------------------------------------------------------------------------------
def sds(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(shape, dtype)


def plan(fn, *args) -> int:
    """XLA's memory plan of ``fn`` lowered on shapes only (nothing is allocated)."""
    total, _ = Bu.planned_bytes(fn.lower(*args).compile())
    return total


@pytest.mark.parametrize("method", list(REGISTRY))
def test_gradient_estimate_bounds_the_compiled_plan(method):
    L, B, D = 2, 50, 96
    p = {"W": sds((L, D, D)), "b": sds((L, D))}
    if REGISTRY[method].learned_inverse:
        p["R"] = sds((L, D, D))
    planned = plan(jax.jit(G.make_grad_fn(method, FlowSpec(D, L))), p, sds((B, D)), {"lam": sds(())})
    est, _ = Bu.gradient_cost(method, L, B, D)
    assert planned <= est <= 3 * planned, (method, planned, est)


@pytest.mark.parametrize("method", list(Bu.STEP))
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_compare_step_and_evaluation_estimates_bound_the_compiled_plans(method, optimizer):
    """The job's compiled pieces (the white-box functions of flowlab.compare.jobs) against STEP / EVALUATION."""
    n, L, N, D = 3, 3, 400, 24
    spec = FlowSpec(D, L)
    p = {"W": sds((n, L, D, D)), "b": sds((n, L, D))}
    if REGISTRY[method].learned_inverse:
        p["R"] = sds((n, L, D, D))
    opt = jax.eval_shape(jax.vmap(J._optimizer(optimizer).init), p)
    step = plan(J._advance_fn(method, spec, optimizer, 2), p, opt, sds((n,), jnp.bool_), sds((N, D)), sds((n,)),
                sds((n,)))  # each member its own learning rate and λ
    words = Bu.STEP[method].words(L, N, D, n)
    if optimizer == "adam":
        words += Bu.ADAM_MATRICES * Bu.learned_matrices(method) * n * L * D * D
    assert step <= Bu.FLOAT_BYTES * words <= 3 * step, (step, Bu.FLOAT_BYTES * words)
    ev = plan(J._eval_fn(method, spec), p, sds((N, D)), sds((n,)))
    coef = Bu.EVALUATION_LEARNED if REGISTRY[method].learned_inverse else Bu.EVALUATION
    assert ev <= Bu.FLOAT_BYTES * coef.words(L, N, D, n)


# ---- refusals --------------------------------------------------------------------------------------------------------
NOUN_KEYS = {"point": "points", "init": "inits", "layer": "layers", "iteration": "iters", "learning rate": "rates"}


def change(part: str) -> tuple[str, int]:
    """One suggested change: "1,200 points" -> ("points", 1200); "3 learning rates (0.01 to 0.04)" -> ("rates", 3)."""
    if part.startswith("D = "):
        return "dim", int(part[4:].replace(",", ""))
    number, noun = part.split(" (")[0].split(" ", 1)
    return NOUN_KEYS[noun.rstrip("s")], int(number.replace(",", ""))


def suggested(text: str) -> dict:
    """The single changes a refusal suggests: {'points': 230, 'inits': 2, 'rates': 3, ...}."""
    tail = text.split("use at most ", 1)[1].rstrip(".")
    return dict(change(part) for part in tail.split(", or "))


def applied(s, changes: dict):
    """The settings with the suggested changes; k learning rates are the k of the grid nearest the shared rate."""
    v = {**s.as_dict(), **changes}
    if "rates" in changes:
        v["rates"] = C.fewer_rates(s, changes["rates"])
    return C.CompareSettings(**v)


@pytest.mark.parametrize("link", [ISSUE_19, ISSUE_192, dict(ISSUE_19, optimizer="adam", lr=1e-3)])
def test_the_issue_links_are_refused_in_one_sentence_naming_the_size(link):
    s = C.CompareSettings(**link)
    text = C.refusal_text(s, SERVER)
    assert text and one_sentence(text), text
    size = float(re.search(r"needs about ([\d.,]+) GiB", text).group(1).replace(",", ""))
    assert size > 10, text  # XLA planned 19 GiB for the first step alone and 192 GiB for the second link
    assert f"{link['inits']} inits × {link['layers']} layers × D = {link['dim']} on 20,000 points" in text
    assert "this server allows 512 MB per session" in text
    with pytest.raises(Bu.OverBudget, match="needs about"):
        C.check(s, SERVER)


def test_the_suggestions_fit():
    s = C.CompareSettings(density=COMPARE_ND, dim=128, layers=4, inits=20, points=20000)
    text = C.refusal_text(s, SERVER)
    tips = suggested(text)
    assert tips and text.startswith("This run needs about"), text
    for key, value in tips.items():
        assert value < (len(s.grid) if key == "rates" else getattr(s, key))
        assert C.refusal_text(applied(s, {key: value}), SERVER) is None, (key, value)


def test_when_no_single_change_fits_the_sentence_names_a_combination_that_does():
    s = C.CompareSettings(**ISSUE_192)
    text = C.refusal_text(s, SERVER)
    assert one_sentence(text) and text.endswith(" together.") and "use at most " in text, text
    parts = text.rsplit("use at most ", 1)[1][:-len(" together.")].replace(" and ", ", ").split(", ")
    changes = dict(change(p) for p in parts)
    assert set(changes) >= {"layers", "inits", "points"}, changes
    assert C.refusal_text(applied(s, changes), SERVER) is None


def test_time_over_budget_names_the_time_and_the_iterations():
    s = C.CompareSettings(density=COMPARE_ND, dim=64, iters=20000)
    text = C.refusal_text(s, SERVER)
    assert one_sentence(text) and "of compute" in text and "20,000 iterations" in text
    assert "5 min of compute per job" in text and "iters" in suggested(text)


def test_the_lambda_sweep_multiplies_the_members():
    s = C.CompareSettings(density=COMPARE_ND, dim=96, inits=10, points=1000, rates=(0.02,))  # one rate: it fits
    assert C.refusal_text(s, SERVER) is None
    text = C.refusal_text(s, SERVER, lams=(0.0, 0.005, 0.05, 0.5, 5.0, 50.0))
    assert text and "6 λ values" in text and one_sentence(text)


def test_the_learning_rate_sweep_multiplies_the_members():
    """Every method trains at every rate of the grid (rates ∪ the shared rate) from every init: seven rates cost
    about seven times one; the refusal names the rates and offers fewer, around the shared rate, that fit."""
    one = C.CompareSettings(density=COMPARE_ND, dim=96, inits=10, points=1000, rates=(0.02,))
    seven = C.CompareSettings(**{**one.as_dict(), "rates": (0.01, 0.04, 0.08, 0.16, 0.32, 0.64)})
    assert len(seven.grid) == 7 and C.job_cost(one).seconds * 5 < C.job_cost(seven).seconds
    assert C.job_cost(one).bytes * 3 < C.job_cost(seven).bytes
    text = C.refusal_text(seven, SERVER)
    assert text and one_sentence(text) and "7 learning rates" in text, text
    tips = suggested(text)
    assert "rates" in tips and C.refusal_text(applied(seven, {"rates": tips["rates"]}), SERVER) is None, text
    k = tips["rates"]
    near = C.fewer_rates(seven, k)
    assert 0.02 in near and len(near) == k
    assert f"{k} learning rate{'s' if k > 1 else ''} ({near[0]:g}" in text
    # the λ sweep trains at the shared rate alone: the rates do not multiply it
    lams = (0.5, 5.0)
    assert C.job_cost(seven, lams).bytes == C.job_cost(one, lams).bytes


ONE = dict(rates=(0.02,))  # the shared rate alone (the page's sweep multiplies the members by its rates)


@pytest.mark.parametrize("settings", [dict(), dict(density="moons", lr=0.1, iters=300, optimizer="sgd"),
                                      dict(optimizer="adam", lr=0.005, rates=(0.0025, 0.01, 0.02, 0.04, 0.08, 0.16)),
                                      dict(iters=2000), dict(inits=20),
                                      dict(density=COMPARE_ND, dim=8), dict(density=COMPARE_ND, dim=128, **ONE),
                                      dict(density=COMPARE_ND, dim=64, iters=1000, **ONE),
                                      dict(density=COMPARE_ND, dim=2, points=20000, iters=1000, **ONE),
                                      dict(inits=20, points=20000, iters=500, layers=2, **ONE)])
def test_values_that_fit_pass(settings):
    s = C.CompareSettings(**settings)
    assert C.refusal_text(s, SERVER) is None
    C.check(s, SERVER)
    C.check(s, None)  # no budget: no check


# ---- helpers ---------------------------------------------------------------------------------------------------------
def test_largest_fitting_is_a_bisection():
    calls = []

    def fits(v):
        calls.append(v)
        return v <= 1234

    assert Bu.largest_fitting(fits, 10, 20000) == 1234 and len(calls) < 20
    assert Bu.largest_fitting(fits, 2000, 20000) is None
    assert Bu.largest_fitting(lambda v: True, 1, 7) == 7
    assert Bu.largest_fitting(lambda v: True, 5, 4) is None


def test_words():
    assert [Bu.size_text(v) for v in (512 * MB, 19.2 * GiB, 192 * GiB, 1.24 * GiB, 2048)] == \
           ["512 MB", "19 GiB", "192 GiB", "1.2 GiB", "2 KB"]
    assert [Bu.duration_text(v) for v in (45, 600, 5400, 29 * 3600, 30 * 86400)] == \
           ["45 s", "10 min", "1.5 h", "29 h", "30 days"]
    assert [Bu.nice_floor(v) for v in (7, 99, 1234, 987, 20000)] == [7, 99, 1200, 980, 20000]


def test_out_of_memory_errors():
    xla = RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 20615843020 bytes.")
    assert Bu.is_oom(xla) and Bu.is_oom(MemoryError()) and not Bu.is_oom(RuntimeError("zoom"))
    assert Bu.out_of_memory_text(xla) == "could not allocate 19 GiB"
    assert Bu.out_of_memory_text(MemoryError()) == "ran out of memory"
    assert Bu.error_line(RuntimeError("a\nb")) == "RuntimeError: a"


# ---- live and command-line training -------------------------------------------------------------------------------
def test_the_playgrounds_largest_settings_fit_the_default_session_budget():
    """The widgets and links cannot ask for more than the default budget: the schema's maxima fit 512 MB."""
    from flowlab.gradients import PLAYGROUND_METHODS
    from flowlab.session import GRID_N, LIVE_TEST_POINTS
    from flowlab.settings import PLAYGROUND

    b = Bu.session_budget(environ={}, available=None)
    for m in PLAYGROUND_METHODS:
        kw = dict(method=m, layers=int(PLAYGROUND["layers"].hi), batch=int(PLAYGROUND["batch"].hi),
                  ntrain=int(PLAYGROUND["ntrain"].hi), ntest=LIVE_TEST_POINTS, views=GRID_N ** 2)
        assert Bu.training_refusal(b, **kw) is None, m
        assert Bu.training_cost(**kw).bytes > Bu.training_cost(**{**kw, "layers": 10}).bytes


def test_training_refusal_names_what_fits_and_the_suggestion_fits():
    b = Bu.Budget(20 * Bu.MB, None, ("this server allows", "20 MB per session"))
    kw = dict(method="self_normalizing", layers=200, batch=4096, ntrain=200_000, ntest=5000)
    msg = Bu.training_refusal(b, **kw)
    assert msg.startswith("This run needs about") and "20 MB per session" in msg and msg.count(".") <= 2
    batch = int(msg.split("batch ")[-1].split(",")[0].replace(" ", "")) if "batch 1" in msg else None
    layers = int(msg.split(", or ")[-1].split(" layer")[0])
    assert Bu.training_refusal(b, **{**kw, "layers": layers}) is None
    assert Bu.training_refusal(b, **{**kw, "layers": layers + 1}) is not None
    if batch:
        assert Bu.training_refusal(b, **{**kw, "batch": batch}) is None
    two = Bu.training_cost(**{**kw, "candidates": 2}).bytes
    assert two > Bu.training_cost(**kw).bytes
