"""Hostile links on every page with settings in its URL: every query key of the page's schema gets the same hostile
value at once (huge, negative, not a number, infinite, empty, very long, markup, repeated), and one seeded mix of
them per page.  The page must render without an exception, say what it changed (or refuses) in short one-line
sentences, show no value from the link as markup, and write back a link that parses without notes (every value inside
its bounds)."""
import random

import pytest

from apputil import can_link, open_page, text_of
from flowlab.settings import COMPARE, LAYERS_PAGE, PLAYGROUND, TIMING
from flowlab.system import rss_bytes

PAGES = {"playground": PLAYGROUND, "layers": LAYERS_PAGE, "compare": COMPARE, "timing": TIMING}
HOSTILE = {
    "huge": "1e308",
    "too_many_digits": "9" * 400,
    "negative": "-12345",
    "nan": "nan",
    "inf": "inf",
    "empty": "",
    "long": "x" * 20_000,
    "markup": "[click](http://evil.example) ![b](http://evil.example/b.png) <b>x</b> $x^2$ www.evil.example",
    "unicode": "\u202e\u0000😀" * 50,
    "list": "1,2,3,4,5,6,7,8,9,10," * 200,
}


def _query(schema, value):
    return {f.query_key: value for f in schema.fields if f.query_key}


def _check(at, schema):
    assert not at.exception, [e.value for e in at.exception][:1]
    for w in list(at.warning) + list(at.error):  # notes, and refusals of what the budget cannot run: one line each
        assert len(text_of(w.value)) <= 400 and "\n" not in w.value.strip(), text_of(w.value)[:200]
        assert not can_link(w.value), w.value[:200]
    written = {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    settings, notes = schema.parse_query(written)
    assert notes == [], notes
    schema.check(settings)  # every value inside its bounds


@pytest.mark.parametrize("value", list(HOSTILE), ids=list(HOSTILE))
@pytest.mark.parametrize("page", list(PAGES))
def test_the_same_hostile_value_in_every_key(page, value):
    schema = PAGES[page]
    at = open_page(page, _query(schema, HOSTILE[value]))
    _check(at, schema)


@pytest.mark.parametrize("page", list(PAGES))
def test_a_mix_of_hostile_values_repeated_keys_and_unknown_keys(page):
    schema = PAGES[page]
    rng = random.Random(page)
    q = {f.query_key: [rng.choice(list(HOSTILE.values())) for _ in range(rng.randint(1, 3))]
         for f in schema.fields if f.query_key}
    q.update({"unknown_key": "1", "x" * 500: "y" * 500})
    at = open_page(page, q)
    _check(at, schema)


def _rss_mb() -> float:
    return rss_bytes() / 2**20


def test_memory_stays_bounded_when_the_largest_links_are_opened_again_and_again():
    """The first round may compile and cache; later rounds of the same largest-value links must not keep growing."""
    rounds = []
    for _ in range(3):
        for page, schema in PAGES.items():
            _check(open_page(page, _query(schema, HOSTILE["huge"])), schema)
        rounds.append(_rss_mb())
    assert rounds[-1] - rounds[0] < 300, rounds  # MB
