"""flowlab.compare.settings: CompareSettings is the COMPARE schema as a frozen dataclass (checks with one sentence,
fixed method order, aliases), its URL through the schema (bad values fall back, values above a maximum are clamped,
each with a note) and its headless command."""
import ast
import dataclasses
import pathlib

import pytest

from flowlab import compare as compare_package
from flowlab import presets
from flowlab.cli.figure import build_parser
from flowlab.compare import CompareSettings
from flowlab.custom_densities import MAX_TEXT
from flowlab.settings import COMPARE, COMPARE_ND, COMPARE_TEXT


def test_fields_are_the_schema_keys_and_defaults_the_preset():
    assert tuple(f.name for f in dataclasses.fields(CompareSettings)) == COMPARE.keys
    d = CompareSettings().as_dict()
    assert d == {**presets.COMPARE, "text": presets.PLAYGROUND_EXTRA["text"],
                 "methods": list(presets.COMPARE["methods"]), "rates": list(presets.COMPARE["rates"])}
    assert CompareSettings().optimizer == "sgd" and CompareSettings().lr == presets.COMPARE_LR["sgd"]


@pytest.mark.parametrize("kw, match", [
    (dict(density="unicorn"), "The density must be one of"),
    (dict(dim=3), "is 2-D"),
    (dict(density=COMPARE_ND, dim=10_000), "between 2 and 512"),
    (dict(layers=0), "number of layers"),
    (dict(layers=2.5), "whole number"),
    (dict(lr=-1.0), "learning rate"),
    (dict(lr=float("nan")), "learning rate"),
    (dict(optimizer="rmsprop"), "optimiser"),
    (dict(inits=0), "initialisations"),
    (dict(iters=0), "iterations"),
    (dict(points=5), "data points"),
    (dict(methods=()), "at least one"),
    (dict(methods=("relative", "magic")), "gradient methods must be one of"),
    (dict(methods=("relative", "relative")), "each value once"),
    (dict(lam=-1.0), "λ"),
    (dict(seed=-1), "seed"),
    (dict(iters=5, eval_every=10), "cannot exceed"),
    (dict(init="zeros"), "initialisation"),
    (dict(density=COMPARE_TEXT, text=""), "Type some text to learn"),
    (dict(density=COMPARE_TEXT, text="   "), "Type some text to learn"),
    (dict(density=COMPARE_TEXT, text="x" * (MAX_TEXT + 1)), f"at most {MAX_TEXT} characters"),
    (dict(density=COMPARE_TEXT, dim=3), "text density is 2-D"),
])
def test_bad_settings_raise_one_sentence(kw, match):
    with pytest.raises(ValueError, match=match) as e:
        CompareSettings(**kw)
    msg = str(e.value)
    assert msg.endswith(".") and "\n" not in msg


def test_methods_are_normalised_to_a_fixed_order_and_aliases_resolved():
    assert CompareSettings(methods=["self_normalizing", "inverse"]).methods == ("inverse", "self_normalizing")
    assert CompareSettings(methods="relative").methods == ("relative",)
    assert CompareSettings(methods="snf,ordinary").methods == ("inverse", "self_normalizing")
    assert CompareSettings(optimizer="gd").optimizer == "sgd"  # the old name is an alias
    assert CompareSettings(layers=3.0).layers == 3 and isinstance(CompareSettings(lr=1).lr, float)


def test_frozen_and_replace_checks_again():
    s = CompareSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.inits = 3
    assert dataclasses.replace(s, inits=3).inits == 3
    with pytest.raises(ValueError, match="initialisations"):
        dataclasses.replace(s, inits=21)


def test_every_and_explode():
    assert CompareSettings(density=COMPARE_ND, dim=64, iters=500).every == 5
    assert CompareSettings().every == 1
    assert CompareSettings(iters=10, eval_every=4).every == 4
    assert CompareSettings(density=COMPARE_ND, dim=12).explode == 1000 + 100 * 12


def test_query_round_trip_and_bad_values():
    s = CompareSettings(density=COMPARE_ND, dim=64, optimizer="adam", lr=0.003, inits=4, iters=200)
    got, notes = COMPARE.parse_query(COMPARE.dump_query(s.as_dict()))
    assert notes == [] and CompareSettings(**got) == s
    assert s.query() == COMPARE.dump_query(s.as_dict()) and s.query()["opt"] == "adam"
    got, notes = COMPARE.parse_query({"layers": "x", "inits": "0", "opt": "rmsprop", "dim": "64"})
    assert got["layers"] == 2 and got["inits"] == 10 and got["optimizer"] == "sgd" and got["dim"] == 2
    assert len(notes) == 4 and "'x'" in notes[0]
    assert all(n.endswith(".") and "\n" not in n for n in notes)


def test_query_above_the_maximum_is_clamped_with_a_note_and_gd_is_an_alias():
    got, notes = COMPARE.parse_query({"inits": "21", "opt": "gd"})
    assert got["inits"] == COMPARE["inits"].hi == 20 and got["optimizer"] == "sgd"
    assert len(notes) == 1 and "inits='21'" in notes[0] and "20" in notes[0]
    CompareSettings(**got)  # the clamped settings are valid


def test_command_reproduces_the_settings_on_the_command_line():
    s = CompareSettings(density=COMPARE_ND, dim=16, optimizer="adam", lr=0.004, inits=3, iters=40, points=50,
                        methods=("relative", "self_normalizing"), lam=10.0, seed=7, eval_every=4)
    cmd = s.command("convergence", out="runs/x", png=False)
    assert cmd.startswith("python -m flowlab figure convergence ") and cmd.endswith("--out runs/x")
    args = build_parser().parse_args(cmd.split()[4:])
    assert CompareSettings(**COMPARE.from_args(args)) == s


# ---- the density of a typed text (issue 18) --------------------------------------------------------------------------
def test_a_text_link_carries_the_text_and_a_toy_link_does_not():
    s = CompareSettings(density=COMPARE_TEXT, text="Hi there", points=50)
    q = s.query()
    assert q["density"] == "text" and q["text"] == "Hi there"
    got, notes = COMPARE.parse_query(q)
    assert notes == [] and CompareSettings(**got) == s
    toy = CompareSettings(text="ignored").query()  # the text applies only to the text density
    assert "text" not in toy and COMPARE.parse_query(toy)[0]["text"] == presets.PLAYGROUND_EXTRA["text"]
    assert CompareSettings(density="moons", text="").text == ""  # no check where it does not apply


def test_bad_text_from_a_link_falls_back_with_one_note():
    long = "A" * (MAX_TEXT + 5)
    got, notes = COMPARE.parse_query({"density": "text", "text": long})
    assert got["text"] == presets.PLAYGROUND_EXTRA["text"] and len(notes) == 1
    assert repr(long) in notes[0] and f"at most {MAX_TEXT} characters" in notes[0] and "\n" not in notes[0]
    got, notes = COMPARE.parse_query({"density": "text", "text": ""})
    assert got["text"] == presets.PLAYGROUND_EXTRA["text"]
    assert len(notes) == 1 and notes[0].startswith("Type some text to learn") and "Using text = 'FLOW'" in notes[0]
    CompareSettings(**got)  # what the link falls back to is valid


def test_the_text_command_round_trips_through_a_shell():
    import shlex

    s = CompareSettings(density=COMPARE_TEXT, text="Hi 'you'", inits=2, iters=3, points=40)
    cmd = s.command("convergence", out="runs/x", png=False)
    assert "--text " in cmd and "--dim" in cmd
    args = build_parser().parse_args(shlex.split(cmd)[4:])
    assert CompareSettings(**COMPARE.from_args(args)) == s
    assert "--text" not in CompareSettings().command()  # a toy's command has no text


def test_the_compare_package_imports_no_plots():
    """flowlab.compare computes, flowlab.plots.compare draws: the arrow goes one way (no import cycle)."""
    for path in pathlib.Path(compare_package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "plots" not in (node.module or ""), (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert not any("plots" in a.name for a in node.names), path.name
