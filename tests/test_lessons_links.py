"""flowlab.lessons.links: "try it" links follow the target pages' settings schemas and parse there with no notes."""
from urllib.parse import parse_qsl

import pytest

from flowlab import lessons as L
from flowlab import presets
from flowlab.settings import SCHEMAS


def test_try_it_urls_follow_the_page_contracts():
    url = L.try_it_url("playground", density="moons", layers=20, method="relative", activation="smooth_leaky_relu",
                       lr=0.003, batch=256, seed=0)
    assert url == "playground?density=moons&layers=20&method=relative&activation=smooth_leaky_relu&lr=0.003&batch=256&seed=0"
    assert L.try_it_url("timing", dims=[64, 128, 256], methods=("relative", "exact")) == \
        "timing?dims=64,128,256&methods=relative,exact"
    assert L.try_it_url("layers", layers=8, density="moons") == "layers?density=moons&layers=8"
    with pytest.raises(ValueError, match="does not read"):
        L.try_it_url("layers", lr=0.1)
    with pytest.raises(ValueError, match="Unknown page"):
        L.try_it_url("nowhere")


def test_each_page_has_a_schema_and_every_link_parses_cleanly():
    assert set(L.TRY_IT_PAGES) <= set(SCHEMAS)
    links = [L.try_it_url("compare", density="moons", layers=2, lr=0.1, inits=10, iters=300, opt="gd"),
             L.try_it_url("timing", dims=[64, 128, 256, 512], methods=["exact", "inverse", "relative"]),
             L.try_it_url("layers", density="banana", layers=4)]
    for link in links:
        page, query = link.split("?")
        settings, notes = SCHEMAS[page].parse_query(dict(parse_qsl(query)))
        assert notes == [], (page, notes)
    assert SCHEMAS["compare"].parse_query(dict(parse_qsl(links[0].split("?")[1])))[0]["optimizer"] == "sgd"


def test_a_value_the_page_would_change_is_refused():
    with pytest.raises(ValueError, match="would not take"):
        L.try_it_url("layers", density="moons", layers=500)  # above the page's maximum: it would clamp
    with pytest.raises(ValueError, match="would not take"):
        L.try_it_url("playground", density="unicorn")
    assert L.try_it_url("layers") == "layers"


def test_lesson7_links_open_the_tuned_learned_steps_and_the_fixed_contrast():
    """Lesson 7's two Playground links: the tuned preset's learned activation and depth, and the default preset's
    fixed activation and depth (both taken from flowlab.presets), on every density the lesson offers."""
    tuned, base = presets.tuned(None), presets.DEFAULT
    assert tuned.activation == L.lesson_activation().name and tuned.activation != base.activation
    for density in L.LESSON_DENSITIES:
        for act, layers in ((L.lesson_activation().name, L.lesson_settings(density)["layers"]),
                            (base.activation, base.layers)):
            link = L.try_it_url("playground", density=density, activation=act, layers=layers, seed=0)
            settings, notes = SCHEMAS["playground"].parse_query(dict(parse_qsl(link.split("?")[1])))
            assert notes == [] and settings["activation"] == act and settings["layers"] == layers
