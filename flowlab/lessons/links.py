""""Try it" links: relative URLs that open another FlowLab page preset.  The parameters a page accepts are its
settings schema's query keys (``flowlab.settings.SCHEMAS[page]``), and every link is checked to parse there with no
notes, so a lesson can never link to a value the page would refuse or change."""
from __future__ import annotations

from ..settings import SCHEMAS

TRY_IT_PAGES = ("playground", "layers", "compare", "timing")  # the pages a lesson links to (one schema each)


def try_it_url(page: str, **params) -> str:
    """Relative URL ``page?key=value&...`` (keys in the schema's order).  Lists become comma-separated
    (``dims=64,128,256``).  ValueError for a page without a schema, a key the page does not read, or a value it would
    not take as written."""
    if page not in TRY_IT_PAGES:
        raise ValueError(f"Unknown page {page!r}; choose one of {', '.join(TRY_IT_PAGES)}.")
    schema = SCHEMAS[page]
    keys = schema.query_keys
    bad = set(params) - set(keys)
    if bad:
        raise ValueError(f"The {page} page does not read {', '.join(sorted(bad))}.")
    query = {}
    for k in keys:
        if k in params:
            v = params[k]
            query[k] = ",".join(str(u) for u in v) if isinstance(v, (list, tuple)) else str(v)
    _, notes = schema.parse_query(query)
    if notes:
        raise ValueError(f"The {page} page would not take this link as written: {notes[0]}")
    parts = [f"{k}={v}" for k, v in query.items()]
    return f"{page}?" + "&".join(parts) if parts else page
