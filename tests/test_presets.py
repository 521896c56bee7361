import math

import pytest

from flowlab import presets
from flowlab.train import build_trainer


def test_defaults_merge_density_and_method_overrides():
    d = presets.defaults("sine")
    assert d["method"] == "relative" and d["layers"] == presets.DEFAULT["layers"]
    t = presets.defaults("moons")
    assert t["warmup"] == presets.TUNED["moons"]["warmup"] != presets.DEFAULT["warmup"]
    s = presets.defaults("moons", "self_normalizing")
    assert s["method"] == "self_normalizing" and s["warmup"] == t["warmup"]
    for key in ("decay_steps", "batch_size", "lam"):
        assert s[key] == presets.METHOD_OVERRIDES["self_normalizing"][key] != t[key]
    assert presets.defaults("checkerboard") == {**presets.DEFAULT, **presets.METHOD_OVERRIDES.get("relative", {})}


@pytest.mark.parametrize("density", list(presets.PAPER))
def test_paper_training_is_table_2_taken_literally(density):
    s = presets.paper_training(density)
    p = presets.PAPER[density]
    assert (s["layers"], s["batch_size"], s["lr"]) == (p["layers"], p["batch_size"], p["lr"])
    assert s["n_train"] == 5000 and math.isinf(s["clip"]) and s["warmup"] == 0 and s["decay_steps"] == 0
    assert s["standardize"] is False and s["method"] == "relative" and s["b2"] == 0.999  # Adam's default
    t = build_trainer(density, n_test=10, **s)  # every key is a build_trainer argument
    assert t.spec.layers == p["layers"] and len(t.x_train) == 5000 and not t.standardize


def test_paper_preset_only_for_the_papers_densities():
    with pytest.raises(ValueError, match="only for trimodal, moons, sine"):
        presets.paper_training("spirals")


def test_density_method_entries_win(monkeypatch):
    monkeypatch.setitem(presets.TUNED_METHOD, ("sine", "relative"), {"lr": 0.0123, "batch_size": 77})
    monkeypatch.setitem(presets.TUNED, "sine", {"lr": 0.5})
    for (density, method), over in presets.TUNED_METHOD.items():
        d = presets.defaults(density, method)
        assert all(d[k] == v for k, v in over.items()) and d["method"] == method
    assert presets.defaults("sine")["lr"] == 0.0123  # relative is the default method; its entry beats TUNED
    assert presets.defaults("sine", "self_normalizing")["lr"] == 0.5  # TUNED applies to every method
    # method overrides beat the density's shared entry: SNF keeps its batch size
    assert presets.defaults("moons", "self_normalizing")["batch_size"] == \
        presets.METHOD_OVERRIDES["self_normalizing"]["batch_size"]
