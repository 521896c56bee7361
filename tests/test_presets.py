"""flowlab.presets: tuned presets as DEFAULT plus the tunings that apply, the paper's Table 2, page defaults."""
import math
from dataclasses import replace

import pytest

from flowlab import presets
from flowlab.densities import REGISTRY
from flowlab.gradients import TRAIN_METHODS
from flowlab.settings import COMPARE, LAYERS_PAGE, PLAYGROUND, TIMING, TRAIN
from flowlab.train import build_trainer


def test_tuned_merges_density_and_method_tunings():
    every = next(x for x in presets.TUNINGS if x.density is None and x.method is None)  # applies to all pairs
    d = presets.tuned("sine")
    assert d.method == "relative" and d.layers == every.changes["layers"] != presets.DEFAULT.layers
    for n in REGISTRY:  # every pair gets the shared changes, unless a more specific tuning of that pair sets the key
        for m in TRAIN_METHODS:
            own = {k for t in presets.tunings(n, m) if t is not every for k in t.changes}
            assert all(getattr(presets.tuned(n, m), k) == v for k, v in every.changes.items() if k not in own)
    t = presets.tuned("moons")
    moons = next(x for x in presets.TUNINGS if x.density == "moons" and x.method is None)
    assert t.warmup == moons.changes["warmup"] != presets.DEFAULT.warmup
    s = presets.tuned("moons", "self_normalizing")
    snf = next(x for x in presets.TUNINGS if x.density is None and x.method == "self_normalizing")
    assert s.method == "self_normalizing" and s.warmup == t.warmup
    for key in ("decay", "lam"):
        assert getattr(s, key) == snf.changes[key] != getattr(t, key)
    assert presets.tuned("checkerboard") == replace(presets.DEFAULT, **every.changes)  # no tuning of its own


def test_more_specific_tunings_win(monkeypatch):
    tunings = presets.TUNINGS + (presets.Tuning("sine", "relative", {"lr": 0.0123, "batch": 77}, "test"),
                                 presets.Tuning("sine", None, {"lr": 0.5}, "test"))
    monkeypatch.setattr(presets, "TUNINGS", tunings)
    assert presets.tuned("sine").lr == 0.0123  # relative is the default method; its pair entry beats the density's
    assert presets.tuned("sine", "self_normalizing").lr == 0.5  # the density's entry applies to every method
    # a method's entry beats the density's shared entry: SNF keeps its λ on moons
    monkeypatch.setattr(presets, "TUNINGS", tunings + (presets.Tuning("moons", None, {"lam": 0.7}, "test"),))
    snf = next(x for x in presets.TUNINGS if x.density is None and x.method == "self_normalizing")
    assert presets.tuned("moons", "self_normalizing").lam == snf.changes["lam"] != 0.7
    assert presets.tuned("moons", "relative").lam == 0.7


def test_every_tuning_names_its_evidence_and_every_preset_fits_the_schemas():
    for t in presets.TUNINGS:
        assert "assets/benchmarks/" in t.why and t.why.endswith(".")
        assert t.density in (None, *REGISTRY) and t.method in (None, *TRAIN_METHODS)
    assert "assets/benchmarks/" in presets.DEFAULT.why
    for density in REGISTRY:
        for method in TRAIN_METHODS:
            settings = presets.tuned(density, method).settings()
            TRAIN.check({"density": density, **{k: v for k, v in settings.items() if k in TRAIN}})
    PLAYGROUND.check(PLAYGROUND.defaults())
    COMPARE.check(COMPARE.defaults())
    LAYERS_PAGE.check(LAYERS_PAGE.defaults())
    TIMING.check(TIMING.defaults())


@pytest.mark.parametrize("density", list(presets.PAPER))
def test_paper_is_table_2_taken_literally(density):
    p = presets.paper(density)
    assert (p.layers, p.batch, p.lr) == (100, 100, presets.PAPER[density].lr)
    assert p.ntrain == 5000 and math.isinf(p.clip) and p.warmup == 0 and p.decay == 0
    assert p.standardize is False and p.method == "relative" and p.b2 == 0.999  # Adam's default
    t = build_trainer(density, ntest=10, **replace(p, layers=2).settings())  # every key is a build_trainer argument
    assert t.spec.layers == 2 and len(t.x_train) == 5000 and not t.standardize
    assert presets.paper_steps(density) == presets.PAPER[density].epochs * 5000 // 100


def test_paper_preset_only_for_the_papers_densities():
    with pytest.raises(ValueError, match="only for trimodal, moons, sine"):
        presets.paper("spirals")


def test_changes_parse_key_value_pairs_with_the_presets_types():
    assert presets.changes(["batch=256", "lr=3e-3", "activation=tanh_linear", "standardize=false"]) == {
        "batch": 256, "lr": 3e-3, "activation": "tanh_linear", "standardize": False}
    assert presets.changes(None) == {}
    for bad, says in (("bogus=1", "KEY=VALUE"), ("batch", "KEY=VALUE"), ("batch=2.5", "batch is a whole number"),
                      ("standardize=maybe", "true or false")):
        with pytest.raises(ValueError, match=says):
            presets.changes([bad])
