"""The settings of one Compare experiment: a frozen dataclass over the ``flowlab.settings.COMPARE`` schema.

The field names are the schema's keys (``density`` a toy, "text" (the density of the typed ``text``) or the
high-dimensional mixture, ``inits``, ``iters``, ``points``, ``optimizer`` "sgd" | "adam", ``rates`` the
learning-rate sweep, ``curves`` "best" | "shared", ...) and the defaults are ``flowlab.presets.COMPARE``; every value
is checked by ``COMPARE.check`` (one sentence on error), so the page, the URL, the command line and code made
settings all obey the same bounds and rules."""
from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, fields

from .. import presets
from ..activations import make_activation
from ..chunk import divergence_threshold
from ..flow import FlowSpec
from ..settings import COMPARE, COMPARE_ND, COMPARE_TEXT

_D = {**presets.COMPARE, "text": COMPARE.defaults()["text"]}

EVALS_PER_RUN = 100  # above D = 32 the loss is evaluated about this many times per run (an evaluation costs a step)
MAX_EVALS = 2000  # up to D = 32 every step is evaluated, in runs of up to this many steps (bounds the history)


def evaluation_interval(dim: int, iters: int, eval_every: int = 0) -> int:
    """Optimiser steps per evaluation: ``eval_every`` when set; else every step up to D = 32 (at most about
    ``MAX_EVALS`` evaluations per run), about ``EVALS_PER_RUN`` evaluations above."""
    if eval_every:
        return int(eval_every)
    return max(1, int(iters) // (MAX_EVALS if int(dim) <= 32 else EVALS_PER_RUN))


@dataclass(frozen=True)
class CompareSettings:
    """Settings of one convergence experiment; an invalid value raises ValueError with one sentence."""

    density: str = _D["density"]
    text: str = _D["text"]  # the text whose density is learned when ``density`` is "text"
    dim: int = _D["dim"]
    layers: int = _D["layers"]
    optimizer: str = _D["optimizer"]
    lr: float = _D["lr"]
    rates: tuple = _D["rates"]
    inits: int = _D["inits"]
    iters: int = _D["iters"]
    points: int = _D["points"]
    methods: tuple = _D["methods"]
    lam: float = _D["lam"]
    seed: int = _D["seed"]
    activation: str = _D["activation"]
    init: str = _D["init"]
    eval_every: int = _D["eval_every"]  # optimiser steps between loss evaluations; 0 = automatic (see ``every``)
    curves: str = _D["curves"]  # "best": each method at its best rate of the sweep; "shared": all at ``lr``

    def __post_init__(self):
        checked = COMPARE.check({f.name: getattr(self, f.name) for f in fields(self)})
        for key, value in checked.items():  # frozen: store the normalised values (aliases resolved, fixed order)
            object.__setattr__(self, key, value)

    @property
    def every(self) -> int:
        """Optimiser steps per evaluation (``evaluation_interval``)."""
        return evaluation_interval(self.dim, self.iters, self.eval_every)

    @property
    def grid(self) -> tuple:
        """The learning rates every method is trained at: ``rates`` and the shared rate ``lr``, ascending, each
        once."""
        return tuple(sorted(set(self.rates) | {self.lr}))

    @property
    def explode(self) -> float:
        """The loss (nats) above which an init counts as diverged: 1000 + 100·D."""
        return divergence_threshold(self.dim)

    @property
    def high_dimensional(self) -> bool:
        """The density is the random-rotation Gaussian mixture (any D), not a 2-D toy."""
        return self.density == COMPARE_ND

    @property
    def text_density(self) -> bool:
        """The density is the typed text's (``flowlab.custom_densities.text_density``)."""
        return self.density == COMPARE_TEXT

    @property
    def spec(self) -> FlowSpec:
        return FlowSpec(self.dim, self.layers, make_activation(self.activation))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["methods"], d["rates"] = list(self.methods), list(self.rates)
        return d

    def query(self) -> dict[str, str]:
        """The page's URL query of these settings (``COMPARE.dump_query``)."""
        return COMPARE.dump_query(self.as_dict())

    def command(self, kind: str = "convergence", out: str = "runs/compare", png: bool = True) -> str:
        """The headless command that draws the same figure: ``python -m flowlab figure KIND --key value ...`` with
        every setting the command line offers that applies (the text only for the text density), quoted for a
        shell."""
        d = self.as_dict()
        args = [f"{f.flag} {shlex.quote(f.dump(d[f.key]))}" for f in COMPARE.fields
                if f.cli and (f.applies is None or f.applies(d))]
        return " ".join(["python -m flowlab figure", kind, *args, "--out", out] + (["--png"] if png else []))


assert tuple(f.name for f in fields(CompareSettings)) == COMPARE.keys, "CompareSettings follows the COMPARE schema"
