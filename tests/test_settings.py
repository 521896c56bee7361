"""flowlab.settings / flowlab.schema: one table per page; URL parse and dump with one-line notes, strict checks,
widget limits and command-line options — all from the same fields."""
import argparse

import pytest

from flowlab import presets
from flowlab.flow import TRAINER_INITS
from flowlab.gradients import REGISTRY
from flowlab.settings import COMPARE, INIT_LABELS, LAMBDAS, LAYERS_PAGE, PLAYGROUND, SCHEMAS, TIMING, TRAIN, shown


# ---- the Playground's URL -----------------------------------------------------------------------------------------
def test_query_round_trip():
    s, notes = PLAYGROUND.parse_query({"density": "sine", "layers": "7", "method": "self_normalizing",
                                       "activation": "tanh_linear", "lr": "0.0005", "batch": "64", "seed": "3",
                                       "decay": "9000", "init": "identity_noise", "contour": "1", "b2": "0.95"})
    assert notes == [] and s["b2"] == 0.95
    assert (s["density"], s["layers"], s["method"], s["activation"], s["lr"], s["batch"], s["seed"], s["decay"],
            s["init"], s["contour"]) == ("sine", 7, "self_normalizing", "tanh_linear", 0.0005, 64, 3, 9000,
                                         "identity_noise", True)
    s2, notes2 = PLAYGROUND.parse_query(PLAYGROUND.dump_query(s))
    assert s2 == s and notes2 == []


def test_query_missing_keys_take_the_tuned_defaults_of_the_density_and_method():
    s, notes = PLAYGROUND.parse_query({"density": "trimodal"})
    d = presets.tuned("trimodal")
    assert notes == [] and s["layers"] == d.layers and s["lr"] == d.lr and s["batch"] == d.batch
    assert s["decay"] == d.decay and s["warmup"] == d.warmup
    assert s["init"] == "orthogonal" and PLAYGROUND.parse_query({"density": "moons"})[0]["init"] == "data"
    assert s["b2"] == d.b2 and PLAYGROUND.parse_query({"density": "moons"})[0]["b2"] == presets.tuned("moons").b2
    s0, _ = PLAYGROUND.parse_query({})
    assert s0["density"] == presets.PLAYGROUND_DENSITY
    snf, _ = PLAYGROUND.parse_query({"density": "moons", "method": "snf"})  # a link's method brings its tuning
    assert snf["method"] == "self_normalizing" and snf["batch"] == presets.tuned("moons", "self_normalizing").batch


@pytest.mark.parametrize("key, value, why", [
    ("layers", "abc", "not a whole number"), ("layers", "0", "between 1 and 200"), ("layers", "2.5", "whole number"),
    ("lr", "-1", "between"), ("lr", "nan", "between"), ("lr", "x", "number"), ("lr", "inf", "between"),
    ("batch", "0", "between"), ("method", "magic", "choose one of"), ("activation", "relu", "choose one of"),
    ("contour", "maybe", "use 1 or 0"), ("seed", "-4", "between"), ("decay", "-1", "between"),
    ("decay", "1e3.5", "not a whole number"), ("init", "zeros", "choose one of"), ("b2", "0.2", "between"),
    ("b2", "beta", "not a number"), ("layers", "", "not a whole number"), ("lr", "0x1p-3", "not a number"),
])
def test_query_bad_values_fall_back_with_a_note(key, value, why):
    good, _ = PLAYGROUND.parse_query({"density": "moons"})
    s, notes = PLAYGROUND.parse_query({"density": "moons", key: value})
    assert s[key] == good[key]
    assert len(notes) == 1 and key in notes[0] and repr(value) in notes[0] and why in notes[0]


@pytest.mark.parametrize("key, value, clamped", [("layers", "201", 200), ("layers", "1e9", 200), ("b2", "1", 0.9999),
                                                 ("batch", "100000", 4096), ("lr", "5", 1.0)])
def test_query_values_above_the_maximum_are_clamped_with_a_note(key, value, clamped):
    s, notes = PLAYGROUND.parse_query({"density": "moons", key: value})
    assert s[key] == clamped
    assert len(notes) == 1 and key in notes[0] and repr(value) in notes[0] and "between" in notes[0]


def test_query_unknown_keys_repeated_keys_and_huge_values():
    s, notes = PLAYGROUND.parse_query({"density": "unicorn", "layers": ["3", "5"], "nonsense": "1"})
    assert s["density"] == presets.PLAYGROUND_DENSITY and s["layers"] == 5
    assert len(notes) == 1 and "unicorn" in notes[0]
    s, _ = PLAYGROUND.parse_query({"method": "self-normalizing"})
    assert s["method"] == "self_normalizing"
    _, notes = PLAYGROUND.parse_query({"lr": "x" * 100_000})
    assert len(notes) == 1 and len(notes[0]) < 300  # the echoed value is cut
    assert len(shown("y" * 1000)) <= 81


def test_every_trainer_initialisation_has_a_label():
    assert set(INIT_LABELS) == set(TRAINER_INITS)


# ---- one table for every surface ----------------------------------------------------------------------------------
def test_widget_limits_come_from_the_fields():
    w = PLAYGROUND.widget("layers")
    assert (w["min_value"], w["max_value"]) == (1, 200)
    m = PLAYGROUND.widget("method")
    assert m["options"] == ["exact", "relative", "self_normalizing"]
    assert m["format_func"]("relative") == REGISTRY["relative"].label
    assert COMPARE.widget("inits")["max_value"] == COMPARE["inits"].hi


@pytest.mark.parametrize("schema", list(SCHEMAS.values()), ids=list(SCHEMAS))
def test_defaults_pass_the_strict_check_and_round_trip_through_the_url(schema):
    d = schema.defaults()
    if schema is TRAIN:
        d["density"] = "moons"
    assert schema.check(d) == d
    got, notes = schema.parse_query(schema.dump_query(d))
    assert notes == []
    assert {k: got[k] for k in schema.keys if schema[k].query_key} == \
        {k: d[k] for k in schema.keys if schema[k].query_key}


def test_strict_check_says_what_is_wrong_in_one_sentence():
    for bad, match in [({"layers": 0}, "The number of layers must be between 1 and 200, got 0."),
                       ({"layers": 2.5}, "must be a whole number"), ({"method": "magic"}, "must be one of"),
                       ({"lr": float("nan")}, "The learning rate must be between"), ({"zz": 1}, "Unknown setting")]:
        with pytest.raises(ValueError, match=match) as e:
            PLAYGROUND.check(bad)
        assert str(e.value).endswith(".") and "\n" not in str(e.value)


def test_compare_rules_and_aliases():
    s, notes = COMPARE.parse_query({"layers": "x", "inits": "0", "opt": "rmsprop", "dim": "64"})
    assert s["layers"] == 2 and s["inits"] == presets.COMPARE["inits"] and s["optimizer"] == "sgd" and s["dim"] == 2
    assert len(notes) == 4 and "'x'" in notes[0]
    assert COMPARE.parse_query({"opt": "gd"})[0]["optimizer"] == "sgd"
    assert COMPARE.check({"methods": "snf,inverse"})["methods"] == ("inverse", "self_normalizing")  # registry order
    with pytest.raises(ValueError, match="is 2-D"):
        COMPARE.check({"dim": 3})
    with pytest.raises(ValueError, match="cannot exceed"):
        COMPARE.check({"iters": 5, "eval_every": 10})
    assert LAMBDAS.check("0, 1; 10") == (0.0, 1.0, 10.0)
    with pytest.raises(ValueError, match="at most 8"):
        LAMBDAS.check(",".join(str(i) for i in range(9)))


def test_timing_lists():
    s, notes = TIMING.parse_query({"dims": "256, 64;128 64", "methods": "exact,relative"})
    assert s["dims"] == (64, 128, 256) and s["methods"] == ("relative", "exact") and notes == []  # cheapest first
    s, notes = TIMING.parse_query({"dims": "64,abc"})
    assert s["dims"] == presets.TIMING["dims"] and "not a whole number" in notes[0]
    assert LAYERS_PAGE.parse_query({"layers": "500"})[0]["layers"] == 100


def test_command_line_options_use_the_same_names_and_bounds():
    p = argparse.ArgumentParser()
    TRAIN.add_arguments(p, [k for k in TRAIN.keys if k != "density"])
    args = p.parse_args(["--lr", "0.5", "--method", "snf", "--batch", "64"])
    assert TRAIN.from_args(args) == {"lr": 0.5, "method": "self_normalizing", "batch": 64}
    with pytest.raises(ValueError, match="--lr: The learning rate must be between"):
        TRAIN.from_args(p.parse_args(["--lr", "5"]))
    assert TRAIN["method"].options() == tuple(m for m in REGISTRY if REGISTRY[m].trainable)


def test_a_link_carries_only_the_settings_of_its_data_source():
    toy = PLAYGROUND.dump_query(PLAYGROUND.defaults())
    assert "text" not in toy and "invert" not in toy and "bw" not in toy
    s, _ = PLAYGROUND.parse_query({"data": "text", "text": "Hi there"})
    q = PLAYGROUND.dump_query(s)
    assert q["text"] == "Hi there" and "bw" not in q and "invert" not in q
    s, _ = PLAYGROUND.parse_query({"data": "draw", "bw": "0.3"})
    assert s["bandwidth"] == 0.3 and PLAYGROUND.dump_query(s)["bw"] == "0.3"
    s, notes = PLAYGROUND.parse_query({"data": "draw", "bw": "7"})
    assert s["bandwidth"] == PLAYGROUND["bandwidth"].hi and len(notes) == 1


def test_compare_takes_the_playgrounds_text_field_for_its_text_density():
    """One text field: the same label, length bound, widget and CLI option on both pages; on Compare it applies when
    the density is "text" (the Playground's when the data source is)."""
    c, p = COMPARE["text"], PLAYGROUND["text"]
    assert (c.label, c.hi, c.help, c.query_key, c.cli) == (p.label, p.hi, p.help, p.query_key, p.cli)
    assert COMPARE.widget("text") == PLAYGROUND.widget("text")
    assert c.applies({"density": "text"}) and not c.applies({"density": "moons"})
    assert p.applies({"source": "text"}) and not p.applies({"density": "text"})
    assert "text" in COMPARE["density"].options() and COMPARE.defaults()["text"] == presets.PLAYGROUND_EXTRA["text"]
    s, notes = COMPARE.parse_query({"density": "text", "text": "Hi"})
    assert notes == [] and (s["density"], s["text"]) == ("text", "Hi")
    assert COMPARE.dump_query(s)["text"] == "Hi" and "text" not in COMPARE.dump_query({**s, "density": "moons"})
    with pytest.raises(ValueError, match="Type some text to learn"):
        COMPARE.check({"density": "text", "text": ""})


@pytest.mark.parametrize("text", ["www.evil.com", "see http://x.io/a?b=1", "[a](http://b.c) ![i](x.png) *em* <b>b</b>",
                                  "$x^2$ a@b.com `code`", "1,000 steps at 0.001 (λ = 2)"])
def test_plain_escapes_every_markdown_construct_and_keeps_the_text(text):
    from flowlab.schema import plain
    out = plain(text)
    shown_text = out.replace("\u2060", "")
    for c in set(text) - set("\u2060"):
        if not c.isalnum() and not c.isspace() and ord(c) < 128:
            assert "\\" + c in shown_text  # every ASCII punctuation escaped
    assert shown_text.replace("\\", "") == text.replace("\\", "")
    assert "www." not in out and "://" not in out and "@" not in out.replace("\u2060\\@", "")
    assert "\u2060\\.0" not in out  # a number's dot gets no word joiner
