"""flowlab.benchmark.stability on synthetic runs: the repeats' middle half, the speed-up and slope ranges it gives,
the rule that lets a live run replace the recorded headline (both outcomes, each reason), and the choice of the
headline's run.  No measuring."""
import itertools
import os

import numpy as np
import pytest

from flowlab import benchmark as B
from flowlab import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED_CPU = os.path.join(ROOT, "assets", "benchmarks", "timing_cpu.json")
SPREAD = np.array([0.97, 0.99, 1.0, 1.01, 1.03])  # five repeats around the median: quartiles 0.99 and 1.01


def run(dims=presets.TIMING_LIVE_DIMS, spread=SPREAD, load=0.5, cores=2, wide=None, repeats=None, platform="cpu"):
    """relative ∝ D², exact ∝ D³ with the repeats ``median · spread``; ``wide`` = {(method, D): spread} overrides
    single points, ``repeats`` = {(method, D): n} keeps the first n repeats of a point."""
    pts = []
    for d in dims:
        for m, t in (("relative", 1e-9 * d ** 2), ("exact", 2e-11 * d ** 3)):
            s = np.asarray((wide or {}).get((m, d), spread)) * t
            s = s[:(repeats or {}).get((m, d), len(s))]
            pts.append(B.Point(m, d, "ok", time_s=float(np.median(s)), times_s=s.tolist()))
    meta = {"methods": ["relative", "exact"], "fit_range": [512, 4096], "load_average_start": [load, 0.4, 0.3],
            "threads": {"cpu_count": cores, "affinity_cpus": cores}, "platform": platform, "label": f"{platform} run",
            "device": platform.upper()}
    return B.BenchResult(meta, pts)


# ---- spreads ---------------------------------------------------------------------------------------------------------
def test_quartiles_are_the_middle_half():
    assert B.quartiles([5, 1, 3, 2, 4]) == (2.0, 4.0)
    assert B.quartiles([7.0]) == (7.0, 7.0)
    assert B.quartiles([1, 2, 3, 4]) == (1.75, 3.25)


def test_ratio_spread_at_the_largest_common_d():
    r = run()
    d, s = B.ratio_spread(r)
    assert d == presets.TIMING_LIVE_DIMS[-1]
    assert s.value == pytest.approx(0.02 * d)  # 2e-11 D³ / 1e-9 D²
    assert s.lo == pytest.approx(0.02 * d * 0.99 / 1.01) and s.hi == pytest.approx(0.02 * d * 1.01 / 0.99)
    assert B.ratio_spread(B.BenchResult({}, [B.Point("relative", 8, "ok", time_s=1.0)])) == (None, None)


def test_slope_spread_is_the_least_squares_slope_and_its_extremes():
    r = run(spread=[0.8, 0.9, 1.0, 1.2, 1.5])
    for m, order in (("relative", 2), ("exact", 3)):
        s = B.slope_spread(r, m)
        assert s.value == pytest.approx(order) == pytest.approx(r.slopes()[m]["window"])
        # every choice of a time inside each point's middle half gives a slope inside [lo, hi], and the ends are met
        pts = r.ok(m)
        x = np.log([p.dim for p in pts])
        q = [B.quartiles(p.times_s) for p in pts]
        slopes = [np.polyfit(x, np.log(choice), 1)[0] for choice in itertools.product(*q)]
        assert min(slopes) == pytest.approx(s.lo) and max(slopes) == pytest.approx(s.hi)
    exact_repeats = run(spread=[1.0] * 5)
    s = B.slope_spread(exact_repeats, "relative")
    assert s.lo == pytest.approx(2.0) and s.hi == pytest.approx(2.0)
    assert B.slope_spread(run(dims=(64, 128, 512)), "relative") is None  # one D in [512, 4096]


# ---- the rule, both ways ---------------------------------------------------------------------------------------------
def test_a_steady_run_is_stable():
    check = B.stability(run())
    assert check.stable and check.reasons == ()
    assert check.dim == 2896 and set(check.slopes) == {"relative", "exact"}
    r, rel, ex = check.ratio, check.slopes["relative"], check.slopes["exact"]
    assert check.spread_text() == (f"{r.value:.1f}× ({r.lo:.1f}–{r.hi:.1f}×) at D = 2896; slope of relative "
                                   f"{rel.value:.2f} ({rel.lo:.2f}–{rel.hi:.2f}), of exact "
                                   f"{ex.value:.2f} ({ex.lo:.2f}–{ex.hi:.2f})")
    assert "57.9× (56.8–59.1×)" in check.spread_text() and "relative 2.00 (" in check.spread_text()


WIDE = [0.5, 0.8, 1.0, 1.6, 2.5]  # quartiles 0.8 and 1.6: a factor 2 on its own
WIDER = [0.1, 0.3, 1.0, 3.0, 9.0]  # quartiles 0.3 and 3: a factor 10


@pytest.mark.parametrize("kw, reason", [
    (dict(wide={("exact", 2896): WIDE}), "the speed-up at D = 2896 ranges"),
    (dict(wide={("relative", 512): WIDER}), "the slope of relative ranges"),
    (dict(wide={("exact", 512): WIDER}), "the slope of exact ranges"),
    (dict(repeats={("exact", 2896): 3}), "fewer than 5 repeats, e.g. exact at D = 2896 with 3"),
    (dict(dims=(32, 64, 128, 256, 512)), "relative has 1 D in [512, 4096], the slope needs 3"),  # the former grid
    (dict(load=11.0), "the machine was busy, load average 11.0 at the start on 2 cores"),
    (dict(load=3.0, cores=2), "load average 3.0"),
])
def test_each_reason_makes_a_run_unstable(kw, reason):
    check = B.stability(run(**kw))
    assert not check.stable
    assert any(reason in r for r in check.reasons), check.reasons


def test_the_limits_are_the_presets():
    rule = presets.TIMING_STABLE
    just_in = (rule["ratio"] * 0.99) ** 0.25  # both points with quartiles 1/f and f: the ratio spans 1/f² .. f²
    just_out = (rule["ratio"] * 1.01) ** 0.25
    mk = lambda f: run(wide={(m, 2896): [1 / f, 1 / f, 1.0, f, f] for m in ("relative", "exact")})  # noqa: E731
    assert not any("speed-up" in r for r in B.stability(mk(just_in)).reasons)
    assert any("speed-up" in r for r in B.stability(mk(just_out)).reasons)
    assert B.stability(run(load=2.0, cores=2)).stable  # at most one per core
    assert B.stability(run(load=4.0, cores=4)).stable
    assert not B.stability(run(), rule={"repeats": 6}).stable
    no_load = run()
    del no_load.meta["load_average_start"]  # a system without load averages: that check is left out
    assert B.stability(no_load).stable


def test_rule_text_states_the_numbers_of_the_presets():
    text = B.rule_text()
    r = presets.TIMING_STABLE
    lo, hi = presets.TIMING_FIT_RANGE
    for part in (f"{r['dims']} or more D in [{lo:g}, {hi:g}]", f"{r['repeats']} or more repeats",
                 f"within a factor {r['ratio']:g}", f"range {r['slope']:g} wide", f"at most {r['load_per_core']:g} per core"):
        assert part in text, part


@pytest.mark.skipif(not os.path.exists(RECORDED_CPU), reason="no recorded CPU run")
def test_the_recorded_quiet_cpu_run_passes_the_rule():
    res = B.BenchResult.load(RECORDED_CPU)
    check = B.stability(res)
    assert check.stable, check.reasons
    assert check.ratio.lo <= res.speedups()["relative"][1][-1] <= check.ratio.hi


# ---- which run heads the page ----------------------------------------------------------------------------------------
def test_the_recorded_headline_is_kept_against_an_unstable_live_run():
    cpu, gpu = run(platform="cpu"), run(platform="gpu")
    live = run(load=11.0)
    h = B.choose_headline(live, [gpu, cpu], "cpu")
    assert h.run is cpu and h.source == "recorded" and not h.check.stable
    assert h.why.startswith("Headline kept from the recorded run cpu run: the live run is not stable (the machine "
                            "was busy")
    assert B.choose_headline(live, [gpu, cpu], "tpu").run is gpu  # no run of this platform: the first shown


def test_a_stable_live_run_replaces_the_headline():
    cpu, live = run(platform="cpu"), run()
    h = B.choose_headline(live, [cpu], "cpu")
    assert h.run is live and h.source == "live" and h.check.stable
    assert h.why == "Headline from the live run: it is stable by the rule below."


def test_without_a_recorded_run_an_unstable_live_run_says_so():
    live = run(repeats={("exact", 2896): 2})
    h = B.choose_headline(live, [], "cpu")
    assert h.run is live and h.source == "live" and not h.check.stable
    assert h.why.endswith("its figures are not a conclusion.")
    none = B.choose_headline(None, [], "cpu")
    assert none.run is None and none.why == ""
    only = B.choose_headline(None, [run(platform="cpu")], "cpu")
    assert only.source == "recorded" and only.check is None and only.why == "Headline from the recorded run cpu run."
