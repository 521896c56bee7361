"""The machinery of the settings schema: a ``Field`` per setting, a ``Schema`` per page (the tables are in
``flowlab.settings``).

From a ``Schema`` come every page's widget limits (``widget``), the URL's parse and dump (``parse_query`` /
``dump_query``: a bad value falls back to its default and a value above the maximum is clamped, each with a one-line
note), the command line's arguments (``add_arguments`` / ``from_args``: a bad value is an error) and the strict
check of settings made in code (``check``).  Defaults come from ``flowlab.presets``; each setting has one name on
every surface (the URL and the CLI use the same key, except where ``url`` names a short alias).  No Streamlit here:
``widget`` returns plain keyword arguments."""
from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

MAX_SHOWN = 80  # characters of a user's value echoed in a message


def shown(value, limit: int = MAX_SHOWN) -> str:
    """A user's value for a message: its repr, cut to ``limit`` characters."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit - 1] + "…'"


MAX_NAME_CHARS = 60  # of a file name or method name shown from a model file


def literal(text, limit: int | None = None) -> str:
    """``text`` as a markdown code span, which shows it as-is: no link, bare-URL autolink, image, emphasis, math or
    HTML forms inside one (backslash escapes do not stop Streamlit's autolinking of bare URLs).  Line breaks become
    spaces; cut to ``limit`` characters first; the fence is longer than any run of backticks in the text."""
    text = " ".join(str(text).split())
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" else ""  # CommonMark strips one space each side
    return f"{fence}{pad}{text}{pad}{fence}" if text else ""


_MD_PUNCT = frozenset(string.punctuation)


def plain(text) -> str:
    """``text`` for a markdown message (Streamlit's alerts and captions) so that it shows as typed, in the normal
    font: every ASCII punctuation character is backslash-escaped (no link, image, emphasis, math or HTML) and a word
    joiner (U+2060, invisible) goes before the '.', ':' and '@' that could start or continue a web or mail address,
    which Streamlit would otherwise turn into a link even when escaped."""
    text = str(text)
    out = []
    for i, c in enumerate(text):
        nxt = text[i + 1:i + 2]
        if c == "@" or (c == "." and nxt.isalpha()) or (c == ":" and nxt == "/"):
            out.append("\u2060")
        out.append("\\" + c if c in _MD_PUNCT else c)
    return "".join(out)


def _num(v) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


def _show_default(v) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (tuple, list)):
        return ", ".join(_num(x) if isinstance(x, (int, float)) else str(x) for x in v)
    return _num(v) if isinstance(v, (int, float)) else repr(v)


class Invalid(ValueError):
    """A value that cannot be used: ``why`` is a clause such as "not a number"."""


@dataclass(frozen=True)
class Field:
    """One setting.  ``kind``: int, float, choice, bool, str (free text, at most ``hi`` characters), multi (several
    choices), ints, floats (lists).

    ``noun`` starts error sentences ("The learning rate must be ..."); ``label`` is the widget's label; ``url`` the
    query key ("" = the key itself, None = not in the URL); ``cli`` whether the command line offers it; ``alias``
    maps a typed name to a choice (``snf`` -> ``self_normalizing``)."""

    key: str
    kind: str
    label: str
    noun: str = ""
    help: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: Any = None  # tuple, or a callable returning one
    labels: Any = None  # mapping or callable: choice -> text shown
    alias: Callable[[str], str] | None = None
    url: str | None = ""
    cli: bool = True
    step: float | None = None
    fmt: str | None = None
    max_items: int | None = None
    order: Callable | None = None  # multi: canonical order of the chosen values
    group: str = ""
    applies: Callable[[Mapping], bool] | None = None  # whether it matters for these settings (else not in a link)

    @property
    def query_key(self) -> str | None:
        return None if self.url is None else (self.url or self.key)

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def subject(self) -> str:
        return self.noun or f"The setting {self.key}"

    def options(self) -> tuple:
        c = self.choices() if callable(self.choices) else self.choices
        return tuple(c or ())

    def label_of(self, value) -> str:
        if self.labels is None:
            return str(value)
        if callable(self.labels):
            return self.labels(value)
        return self.labels.get(value, str(value))

    # ---- conversion ------------------------------------------------------------------------------------------------
    @staticmethod
    def _float(raw, why: str) -> float:
        """``raw`` as a float (a string is stripped first); ``Invalid(why)`` for booleans and non-numbers."""
        if isinstance(raw, bool):
            raise Invalid(why)
        try:
            return float(raw) if isinstance(raw, (int, float)) else float(str(raw).strip())
        except (TypeError, ValueError):
            raise Invalid(why) from None

    def _scalar(self, raw, kind: str):
        if kind == "int":
            f = self._float(raw, "not a whole number")
            if not math.isfinite(f) or not f.is_integer():
                raise Invalid("not a whole number")
            return int(f)
        if kind == "float":
            f = self._float(raw, "not a number")
            if not math.isfinite(f):
                raise Invalid(f"must be between {_num(self.lo)} and {_num(self.hi)}")
            return f
        if kind == "choice":
            v = self.alias(str(raw)) if self.alias else str(raw).strip()
            if v not in self.options():
                raise Invalid(f"choose one of: {', '.join(map(str, self.options()))}")
            return v
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            t = str(raw).strip().lower()
            if t in ("1", "true", "yes", "on"):
                return True
            if t in ("0", "false", "no", "off", ""):
                return False
            raise Invalid("use 1 or 0")
        raise AssertionError(kind)

    def _items(self, raw) -> list:
        if isinstance(raw, str):
            return [p for p in re.split(r"[,;\s]+", raw.strip()) if p]
        return list(raw)

    def convert(self, raw):
        """The value of ``raw`` (a URL/CLI string or a Python value) in this field's type, bounds not yet checked;
        ``Invalid`` when it cannot be read."""
        if self.kind == "str":  # free text: white space folded; the length is a bound (``hi``)
            return " ".join(str(raw).split())
        if self.kind in ("int", "float", "choice", "bool"):
            return self._scalar(raw, self.kind)
        item = {"multi": "choice", "ints": "int", "floats": "float"}[self.kind]
        parts = self._items(raw)
        if not parts:
            raise Invalid("must name at least one value")
        vals = [self._scalar(p, item) for p in parts]
        if self.kind == "multi":
            if len(set(vals)) != len(vals):
                raise Invalid("must name each value once")
            return tuple(self.order(vals) if self.order else [c for c in self.options() if c in vals])
        return tuple(sorted(set(vals)))

    def out_of_bounds(self, value) -> str | None:
        """Why ``value`` (converted) is outside the bounds, or None."""
        if self.kind == "str":
            return f"must have at most {int(self.hi)} characters" if self.hi is not None and len(value) > self.hi \
                else None
        vals = value if self.kind in ("ints", "floats") else (value,)
        if self.kind in ("int", "float", "ints", "floats"):
            for v in vals:
                if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
                    return f"must be between {_num(self.lo)} and {_num(self.hi)}"
        if self.max_items is not None and self.kind in ("multi", "ints", "floats") and len(value) > self.max_items:
            return f"at most {self.max_items} values"
        return None

    def clamp(self, value):
        """``value`` moved inside the bounds from above (lists: every item; then at most ``max_items``)."""
        if self.kind in ("int", "float") and self.hi is not None and value > self.hi:
            return type(value)(self.hi)
        if self.kind in ("ints", "floats"):
            cast = int if self.kind == "ints" else float
            value = tuple(sorted({cast(min(v, self.hi)) if self.hi is not None else v for v in value}))
        if self.max_items is not None and self.kind in ("multi", "ints", "floats"):
            value = tuple(value)[:self.max_items]
        return value

    def check(self, raw):
        """Strict: the converted value, or ValueError with one sentence."""
        try:
            v = self.convert(raw)
            why = self.out_of_bounds(v)
            if why:
                raise Invalid(why)
        except Invalid as e:
            raise ValueError(f"{self.subject} {_clause(str(e))}, got {shown(raw)}.") from None
        return v

    def dump(self, value) -> str:
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind == "float":
            return f"{float(value):.6g}"
        if self.kind in ("multi", "ints", "floats"):
            return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        return str(value)


def _clause(why: str) -> str:
    """A reason as the end of an error sentence: "not a number" -> "must be a number"."""
    if why.startswith("not "):
        return "must be " + why[4:]
    if why.startswith("choose"):
        return f"must be one of{why[len('choose one of'):]}"
    if why.startswith("use "):
        return "must be " + why[4:]
    if why.startswith("at most"):
        return f"takes {why}"
    return why


Rule = Callable[[dict], "tuple[str, str] | None"]  # settings -> (key to reset, one sentence) when they clash


@dataclass(frozen=True)
class Schema:
    """The settings of one page (or command).  ``defaults(**context)`` gives the defaults, which may depend on the
    ``context`` keys (the Playground's defaults depend on the density and the method)."""

    name: str
    fields: tuple
    defaults_fn: Callable[..., dict]
    context: tuple = ()
    rules: tuple = ()
    _index: dict = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_index", {f.key: f for f in self.fields})

    def __getitem__(self, key: str) -> Field:
        return self._index[key]

    def __contains__(self, key: str) -> bool:
        return key in self._index

    @property
    def keys(self) -> tuple:
        return tuple(self._index)

    @property
    def query_keys(self) -> tuple:
        return tuple(f.query_key for f in self.fields if f.query_key)

    def defaults(self, **context) -> dict:
        return dict(self.defaults_fn(**{k: v for k, v in context.items() if k in self.context}))

    # ---- URL -------------------------------------------------------------------------------------------------------
    def parse_query(self, params: Mapping) -> tuple[dict, list[str]]:
        """Settings from URL query values.  Unknown keys are ignored; a repeated key counts once (its last value); a
        missing key takes its default; a value that cannot be read, or is below the minimum, takes the default and
        one note; a value above the maximum is clamped to it with one note."""
        q = {}
        for k, v in dict(params).items():
            if isinstance(v, (list, tuple)):
                v = v[-1] if v else ""
            q[str(k)] = str(v)
        by_query = {f.query_key: f for f in self.fields if f.query_key}
        notes: list[str] = []
        context = {}
        for key in self.context:  # defaults depend on these: read them first
            f = self[key]
            if f.query_key in q:
                try:
                    context[key] = f.check(q[f.query_key])
                except ValueError:
                    pass
        out = self.defaults(**context)
        for qk, f in by_query.items():
            if qk not in q:
                continue
            raw = q[qk]
            try:
                v = f.convert(raw)
            except Invalid as e:
                notes.append(f"Ignored {qk}={shown(raw)} from the link ({e}); using {_show_default(out[f.key])}.")
                continue
            why = f.out_of_bounds(v)
            if why:
                c = f.clamp(v)
                if f.out_of_bounds(c) is None and c != v:
                    notes.append(f"Changed {qk}={shown(raw)} from the link to {_show_default(c)} ({f.key} {why}).")
                    v = c
                else:
                    notes.append(f"Ignored {qk}={shown(raw)} from the link ({why}); using "
                                 f"{_show_default(out[f.key])}.")
                    continue
            out[f.key] = v
        for rule in self.rules:
            clash = rule(out)
            if clash:
                key, sentence = clash
                out[key] = self.defaults(**context)[key]
                notes.append(f"{sentence} Using {key} = {_show_default(out[key])}.")
        return out, notes

    def dump_query(self, settings: Mapping) -> dict[str, str]:
        """The URL query of ``settings`` (the inverse of ``parse_query``), without the fields that do not apply to them
        (the text of a text density when the source is a toy)."""
        return {f.query_key: f.dump(settings[f.key]) for f in self.fields
                if f.query_key and settings.get(f.key) is not None and (f.applies is None or f.applies(settings))}

    def from_preset(self, preset, **extra) -> dict:
        """This schema's settings from a ``presets.Preset`` (and ``extra`` values): keys the schema lacks are left
        out and values beyond a bound are moved onto it (the paper's "no clipping", inf, becomes the largest
        threshold the widget can show)."""
        values = {**preset.settings(), **extra}
        out = {}
        for k, v in values.items():
            if k not in self:
                continue
            f = self[k]
            if f.kind in ("int", "float") and f.hi is not None and v > f.hi:
                v = type(v)(f.hi) if f.kind == "float" else int(f.hi)
            out[k] = f.check(v)
        return out

    # ---- code and command line ---------------------------------------------------------------------------------
    def check(self, settings: Mapping, complete: bool = True) -> dict:
        """Strict check: every value converted and inside its bounds, the rules kept; ValueError with one sentence
        otherwise.  With ``complete`` the result has every key (defaults filled in)."""
        unknown = set(settings) - set(self.keys)
        if unknown:
            raise ValueError(f"Unknown setting {shown(sorted(unknown)[0])}; known: {', '.join(self.keys)}.")
        context = {k: self[k].check(settings[k]) for k in self.context if k in settings}
        out = self.defaults(**context) if complete else {}
        out.update({k: self[k].check(v) for k, v in settings.items()})
        for rule in self.rules:
            clash = rule(out)
            if clash:
                raise ValueError(clash[1])
        return out

    def add_arguments(self, parser, keys=None):
        """One ``--key`` option per field the command line offers (default None: the preset decides)."""
        for f in self.fields:
            if not f.cli or (keys is not None and f.key not in keys):
                continue
            extra = ""
            if f.kind in ("int", "float", "ints", "floats") and f.lo is not None:
                extra = f" ({_num(f.lo)} to {_num(f.hi)})"
            elif f.kind in ("choice", "multi"):
                extra = f" (one{' or more, comma-separated,' if f.kind == 'multi' else ''} of: " \
                        f"{', '.join(map(str, f.options()))})"
            parser.add_argument(f.flag, dest=f.key, default=None, metavar=f.key.upper(),
                                help=((f.help or f.label) + extra).replace("%", "%%"))  # argparse formats help with %

    def from_args(self, args, keys=None) -> dict:
        """The values given on the command line, strictly checked (ValueError names the option)."""
        out = {}
        for f in self.fields:
            if not f.cli or (keys is not None and f.key not in keys):
                continue
            raw = getattr(args, f.key, None)
            if raw is None:
                continue
            try:
                out[f.key] = f.check(raw)
            except ValueError as e:
                raise ValueError(f"{f.flag}: {e}") from None
        return out

    # ---- widgets ----------------------------------------------------------------------------------------------------
    def widget(self, key: str) -> dict:
        """Keyword arguments for the Streamlit widget of ``key`` (label, limits, step, format, options, help)."""
        f = self[key]
        kw: dict = {"label": f.label}
        if f.help:
            kw["help"] = f.help
        if f.kind == "int":
            kw.update(min_value=int(f.lo), max_value=int(f.hi), step=int(f.step or 1))
        elif f.kind == "float":
            kw.update(min_value=float(f.lo), max_value=float(f.hi), format=f.fmt or "%.4g")
            if f.step:
                kw["step"] = float(f.step)
        elif f.kind in ("choice", "multi"):
            kw.update(options=list(f.options()), format_func=f.label_of)
        elif f.kind == "str" and f.hi is not None:
            kw.update(max_chars=int(f.hi))
        return kw
