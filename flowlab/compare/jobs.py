"""The Compare experiments as resumable jobs.

* ``ConvergenceRun`` (Gresele et al. 2020, Fig. 1 right, extended): deterministic full-batch gradient descent (or
  Adam) on N points from ``inits`` random initial weights shared by every method (the self-normalizing flow gets
  R = Wᵀ on top, which is W⁻¹ for the orthogonal init), at every learning rate of ``settings.grid`` (equal rates
  are not equal steps: the relative gradient is the ordinary one times W̄ᵀW̄, Gresele eq. 15; ``rates`` picks each
  method's best).  Per evaluation the exact loss (slogdet); the wall-clock time of the optimiser steps alone; for
  the self-normalizing flow Keller et al. 2021 Fig. 3's angle (``gradients.snf_angle``), ‖RW − I‖ and the
  reconstruction loss.
* ``LambdaSweep`` (Keller et al. 2021, App. A.5 / Table 4; λ on Keller's scale, eq. 3): self-normalizing flows for
  several reconstruction weights λ from the same inits at the shared rate; too small a λ diverges, a large one
  costs likelihood.

Both check their cost against a ``flowlab.budget.Budget`` before any array is made (``cost.check``: one sentence when
it does not fit), and each compiled piece against XLA's own memory plan before it runs; an allocation that still
fails ends the job with one sentence (``error``), never a retry.  Both run in pieces (``advance(budget_s)``) so a
page can draw progress and cancel between pieces.  A piece is
``every`` optimiser steps of each method: one jitted ``lax.scan`` over the steps, ``vmap`` over the members
(rates × inits, or λ values × inits, each with its own rate and λ), timed
alone (``block_until_ready``; compiled ahead of time, so compilation never enters a timing).  The evaluation after a
piece is not timed.  Divergence (a non-finite gradient, update or loss, or a loss above ``settings.explode``) freezes
that init at its last finite weights and marks it; it is never an error."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import gradients as G
from .. import presets
from ..budget import Budget, OverBudget, is_oom, out_of_memory_text, planned_bytes, size_text
from ..flow import FlowSpec, Norm, init_params
from ..metrics import all_finite, inverse_error, tree_where
from ..settings import LAMBDAS
from .cost import check
from .data import make_data
from .settings import CompareSettings
from .summary import curves_to_csv, sweep_summary

SNF = "self_normalizing"  # the method the λ sweep trains and the angle is measured for
COMPILED_CACHE = 64  # ahead-of-time compiled functions kept (shapes × methods × piece lengths), least recent dropped


def _float_dtype():
    """float64 inside ``jax.enable_x64`` (correctness tests), else float32; never flips the global config."""
    return jnp.asarray(0.0).dtype


def _learns_inverse(method: str) -> bool:
    return G.REGISTRY[method].learned_inverse


def initial_params(settings: CompareSettings, n: int | None = None) -> dict:
    """The ``inits`` initial weights, stacked on a leading axis: W (n, L, D, D), b (n, L, D).  Every method starts
    from exactly these; the self-normalizing flow adds R = Wᵀ (``with_inverse``)."""
    n = settings.inits if n is None else n
    keys = jax.random.split(jax.random.PRNGKey(settings.seed), n)
    spec, dt = settings.spec, _float_dtype()
    return jax.vmap(lambda k: init_params(spec, k, init=settings.init, dtype=dt))(keys)


def with_inverse(params: dict) -> dict:
    """Add the learned inverses R = Wᵀ (Keller App. A.3) to stacked parameters."""
    return {**params, "R": jnp.swapaxes(params["W"], -1, -2)}


def _tile(params: dict, k: int) -> dict:
    """Stacked parameters repeated ``k`` times along the member axis: (n, ...) -> (k·n, ...), init j at j, n + j, ..."""
    return jax.tree_util.tree_map(lambda a: jnp.tile(a, (k,) + (1,) * (a.ndim - 1)), params)


# ---- jitted pieces ------------------------------------------------------------------------------------------------
def _optimizer(name: str):
    """Full-batch SGD or Adam with the learning rate as an array hyper-parameter (a new rate compiles nothing)."""
    return optax.inject_hyperparams(optax.sgd if name == "sgd" else optax.adam)(learning_rate=1e-3)


@lru_cache(maxsize=64)
def _advance_fn(method: str, spec: FlowSpec, optimizer: str, steps: int):
    """jit of ``advance(params, opt_state, alive, data, lr, lam) -> (params, opt_state, alive)``: ``steps`` full-batch
    optimiser steps (lax.scan), vmapped over the leading (member) axis of params/opt_state/alive/lr/lam.  A step whose
    gradient, update or data loss is not finite is dropped and marks that init dead (frozen from then on)."""
    grad_fn = G.make_grad_fn(method, spec)
    opt = _optimizer(optimizer)

    def one(params, opt_state, alive, data, lr, lam):
        def step(carry, _):
            p, o, ok = carry
            grads, m = grad_fn(p, data, {"lam": lam})
            lr_ = jnp.asarray(lr, o.hyperparams["learning_rate"].dtype)
            o2 = o._replace(hyperparams={**o.hyperparams, "learning_rate": lr_})
            upd, o_new = opt.update(grads, o2, p)
            p_new = optax.apply_updates(p, upd)
            good = ok & all_finite(grads) & all_finite(p_new) & jnp.isfinite(m["data_loss"])
            return (tree_where(good, p_new, p), tree_where(good, o_new, o), good), None

        (p, o, ok), _ = jax.lax.scan(step, (params, opt_state, alive), None, length=steps)
        return p, o, ok

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None, 0, 0)))


@lru_cache(maxsize=64)
def _eval_fn(method: str, spec: FlowSpec):
    """jit of ``evaluate(params, data, lam) -> metrics`` per init (vmapped): exact NLL (slogdet) of the standardised
    data; with learned inverses also Keller Fig. 3's angle between the self-normalizing and exact likelihood gradients
    of W (``gradients.snf_angle``: λ = 0, W only), mean_k ‖R_k W_k − I‖_F and the reconstruction loss
    Σ_k mean_b ‖R_k W_k h − h‖²."""

    def one(params, data, lam):
        out = {"loss": G.exact_nll(spec, params, data)}
        if _learns_inverse(method):
            out["inv_err"] = inverse_error(params["R"], params["W"])
            _, m = G.make_grad_fn(method, spec)(params, data, {"lam": lam})
            out["recon"] = m["recon"]
            out["angle"] = G.snf_angle(spec, params, data)
        return out

    return jax.jit(jax.vmap(one, in_axes=(0, None, 0)))


class CompiledCache:
    """Ahead-of-time compiled functions by (key, argument shapes), shared by every session of the process:
    thread-safe (a lock around the table, never around a compile: two sessions may compile the same function at
    once, and the later result stays), at most ``size`` entries, the least recently used dropped first."""

    def __init__(self, size: int = COMPILED_CACHE):
        self.size = int(size)
        self._table: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._table)

    def get(self, fn, key, *args):
        """``fn`` compiled for the shapes of ``args`` (compile time never enters a timing)."""
        sig = (key, tuple((x.shape, str(x.dtype)) for x in jax.tree_util.tree_leaves(args)))
        with self._lock:
            compiled = self._table.get(sig)
            if compiled is not None:
                self._table.move_to_end(sig)
                return compiled
        compiled = fn.lower(*args).compile()
        with self._lock:
            self._table[sig] = compiled
            self._table.move_to_end(sig)
            while len(self._table) > self.size:
                self._table.popitem(last=False)
        return compiled


COMPILED = CompiledCache()


# ---- a group of flows trained side by side ------------------------------------------------------------------------
class _Group:
    """One gradient method over a batch of members (rates × inits, or λ × inits), its history and its timing."""

    def __init__(self, method, spec, optimizer, params, lam, lr, every, data, limit=None):
        self.method, self.spec, self.optimizer, self.every = method, spec, optimizer, every
        self.limit = limit  # () -> bytes one compiled piece may plan (the budget less what the job holds), or None
        self.params = params
        self.opt_state = jax.vmap(_optimizer(optimizer).init)(params)
        n = params["W"].shape[0]
        self.alive = jnp.ones((n,), bool)
        self.lam = jnp.asarray(lam, _float_dtype())
        self.lr = jnp.asarray(lr, _float_dtype())  # each member's learning rate
        self.diverged_at = np.full(n, -1, np.int64)
        self.hist: dict[str, list] = {"iteration": [], "time": []}
        self.elapsed = 0.0
        self.compile_s = 0.0
        self._data = data
        self._checked: dict = {}  # key -> the compiled piece whose plan passed (a handful per group)

    def state_bytes(self) -> int:
        """Bytes of this group's weights and optimiser state."""
        return sum(int(x.nbytes) for x in jax.tree_util.tree_leaves((self.params, self.opt_state)))

    def _compiled(self, what, fn, key, *args):
        """``fn`` compiled for ``args``; XLA's plan checked once against ``limit`` (OverBudget, one sentence)."""
        t0 = time.perf_counter()
        compiled = COMPILED.get(fn, key, *args)
        self.compile_s += time.perf_counter() - t0
        if self.limit is not None and self._checked.get(key) is not compiled:
            planned, _ = planned_bytes(compiled)
            limit = self.limit()
            if planned is not None and planned > limit:
                raise OverBudget(f"XLA plans about {size_text(planned)} for one {what} of the "
                                 f"{G.REGISTRY[self.method].short} gradient, more than the {size_text(max(limit, 0))} "
                                 "its budget leaves for it: use fewer points, inits or layers.")
            self._checked[key] = compiled
        return compiled

    def _advance_compiled(self, lr, steps):
        return self._compiled("step", _advance_fn(self.method, self.spec, self.optimizer, steps),
                              ("adv", self.method, self.spec, self.optimizer, steps),
                              self.params, self.opt_state, self.alive, self._data, lr, self.lam)

    def evaluate(self, iteration: int, explode: float, shift: float):
        """Metrics of every member at ``iteration`` (not timed); a member whose loss is not finite or above
        ``explode`` is marked diverged here and its later values are NaN."""
        fn = self._compiled("evaluation", _eval_fn(self.method, self.spec), ("eval", self.method, self.spec),
                            self.params, self._data, self.lam)
        m = {k: np.asarray(v, np.float64) for k, v in fn(self.params, self._data, self.lam).items()}
        loss = m["loss"] + shift
        alive = np.asarray(self.alive) & np.isfinite(loss) & (loss < explode)
        newly = (self.diverged_at < 0) & ~alive
        self.diverged_at[newly] = iteration
        if newly.any():
            self.alive = jnp.asarray(alive)
        dead = self.diverged_at >= 0
        m["loss"] = loss
        for k, v in m.items():
            self.hist.setdefault(k, []).append(np.where(dead, np.nan, v))
        self.hist["iteration"].append(iteration)
        self.hist["time"].append(self.elapsed)

    def step(self, lr, steps: int):
        """``steps`` optimiser steps of every member (timed; compilation is not)."""
        fn = self._advance_compiled(lr, steps)
        t0 = time.perf_counter()
        p, o, a = fn(self.params, self.opt_state, self.alive, self._data, lr, self.lam)
        jax.block_until_ready((p, o, a))
        self.elapsed += time.perf_counter() - t0
        self.params, self.opt_state, self.alive = p, o, a

    def arrays(self) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v, np.float64) for k, v in self.hist.items()}
        out["iteration"] = np.asarray(self.hist["iteration"], np.int64)
        out["diverged_at"] = self.diverged_at.copy()
        return out


class CompareJob:
    """What both experiments share: the budget check, the data, progress, cancel, failure and the run in timed
    pieces.  With a ``budget`` the job is refused (``OverBudget``, one sentence) before any array is made when its
    estimate does not fit, and each compiled piece is checked against what is left of it."""

    settings: CompareSettings

    def __init__(self, settings: CompareSettings, budget: Budget | None = None, lams=None):
        check(settings, budget, lams)
        self.settings, self.budget = settings, budget
        self.error = None  # one sentence when the job failed (out of memory, over its budget at compile time)
        self.x, self.true_nll = make_data(settings)
        self.norm = Norm.fit(self.x)
        dt = _float_dtype()
        self.data = jnp.asarray((self.x - np.asarray(self.norm.shift)) / np.asarray(self.norm.scale), dt)
        self.shift = float(np.sum(np.log(np.asarray(self.norm.scale, np.float64))))  # x-space NLL offset
        self.explode = settings.explode
        self.iteration = 0
        self.cancelled = False
        self.groups: dict[str, _Group] = {}
        self.started = False  # iteration 0 evaluated (the first call compiles: deferred to start()/advance())

    def held_bytes(self) -> int:
        """Bytes the job holds: the points (float64 and standardised) and every group's weights and state."""
        return int(self.x.nbytes) + int(self.data.nbytes) + sum(g.state_bytes() for g in self.groups.values())

    def _limit(self, group: "_Group"):
        """What one compiled piece of ``group`` may plan: the budget less what the job holds besides its own
        arguments (its weights, its state and the points are arguments of its piece), or None without a budget."""
        if self.budget is None:
            return None
        return lambda: self.budget.memory - (self.held_bytes() - group.state_bytes() - int(self.data.nbytes))

    def _add_group(self, method: str, params, lam, lr):
        g = _Group(method, self.settings.spec, self.settings.optimizer, params, lam, lr, self.settings.every,
                   self.data)
        g.limit = self._limit(g)
        self.groups[method] = g

    def fail(self, sentence: str):
        """End the job with one sentence (shown as its status)."""
        self.error = sentence

    @property
    def n_evals(self) -> int:
        return -(-self.settings.iters // self.settings.every)

    @property
    def done(self) -> bool:
        return self.iteration >= self.settings.iters

    @property
    def finished(self) -> bool:
        """Done, cancelled or failed: nothing more will run."""
        return self.done or self.cancelled or self.error is not None

    @property
    def progress(self) -> float:
        return min(1.0, self.iteration / self.settings.iters)

    def cancel(self):
        self.cancelled = True

    def _evaluate_all(self):
        for g in self.groups.values():
            g.evaluate(self.iteration, self.explode, self.shift)

    def start(self):
        """Evaluate the common starting point (iteration 0); compiles the evaluation functions.  Idempotent; nothing
        after a failure."""
        if not self.started and self.error is None:
            self._evaluate_all()
            self.started = True
        return self

    def advance(self, budget_s: float | None = None, max_pieces: int | None = None) -> float:
        """Run pieces of ``every`` steps (every method in turn, each timed) until the run is done, cancelled,
        ``budget_s`` seconds have passed or ``max_pieces`` pieces ran.  Returns the progress in [0, 1].  A compiled
        piece over the budget, or an allocation that fails, ends the job with one sentence (``error``)."""
        try:
            return self._advance(budget_s, max_pieces)
        except OverBudget as e:
            self.fail(str(e))
        except Exception as e:  # noqa: BLE001 - only an allocation failure is turned into a sentence
            if not is_oom(e):
                raise
            self.fail(f"Stopped at iteration {self.iteration:,} of {self.settings.iters:,}: this machine "
                      f"{out_of_memory_text(e)}; use fewer points, inits or layers.")
        return self.progress

    def _advance(self, budget_s, max_pieces) -> float:
        t0, pieces = time.perf_counter(), 0
        every = self.settings.every
        if not self.cancelled:
            self.start()
        while not self.finished:
            if all(not bool(np.any(np.asarray(g.alive))) for g in self.groups.values()):
                self.iteration = self.settings.iters  # everything diverged: nothing left to run
                break
            steps = min(every, self.settings.iters - self.iteration)  # a shorter last piece if needed
            for g in self.groups.values():
                g.step(g.lr, steps)
            self.iteration += steps
            self._evaluate_all()
            pieces += 1
            if budget_s is not None and time.perf_counter() - t0 >= budget_s:
                break
            if max_pieces is not None and pieces >= max_pieces:
                break
        return self.progress

    def run(self, callback=None):
        """Run to the end (headless); ``callback(job)`` after every ~0.5 s."""
        while not self.finished:
            self.advance(budget_s=0.5)
            if callback:
                callback(self)
        return self

    @property
    def status(self) -> str:
        n = self.settings.iters
        if self.error is not None:
            return self.error
        if self.cancelled and not self.done:
            return f"Stopped at iteration {self.iteration:,} of {n:,}."
        if self.done:
            return f"Finished {n:,} iterations."
        return f"Iteration {self.iteration:,} of {n:,}."

    def to_csv(self) -> str:
        return curves_to_csv(self.curves())

    def curves(self) -> dict:
        raise NotImplementedError


class ConvergenceRun(CompareJob):
    """Every chosen method trained from the same ``inits`` initial weights on the same full batch, at every rate of
    ``settings.grid``: member ``i·inits + j`` is rate i from init j."""

    def __init__(self, settings: CompareSettings, budget: Budget | None = None):
        super().__init__(settings, budget)
        self.init = initial_params(settings)
        k = len(settings.grid)
        lam = np.full(k * settings.inits, settings.lam)
        lr = np.repeat(np.asarray(settings.grid), settings.inits)
        for m in settings.methods:
            self._add_group(m, _tile(self.initial_params(m, numpy=False), k), lam, lr)

    def initial_params(self, method: str, numpy: bool = True) -> dict:
        """The parameters ``method`` started from: the shared inits, plus R = Wᵀ for learned inverses (numpy
        copies unless ``numpy`` is false)."""
        p = with_inverse(self.init) if _learns_inverse(method) else dict(self.init)
        return {k: np.asarray(v) for k, v in p.items()} if numpy else p

    def curves(self) -> dict:
        """(Starts the run if needed.)  Everything a figure needs, as numpy: per method iteration (E,), time (E,) of
        all its members together, loss (E, rates × inits), the self-normalizing extras, diverged_at (−1 = never),
        lr (each member's rate), compile time; plus the settings, the rates, the iterations done and the true
        density's NLL.  ``flowlab.compare.rates`` reads the sweep and cuts out each method's curves at one rate."""
        self.start()
        return {"kind": "convergence", "settings": self.settings.as_dict(), "true_nll": self.true_nll,
                "status": self.status, "rates": list(self.settings.grid), "iteration": self.iteration,
                "methods": {m: {**g.arrays(), "lr": np.asarray(g.lr, np.float64), "compile_s": g.compile_s}
                            for m, g in self.groups.items()}}


class LambdaSweep(CompareJob):
    """Self-normalizing flows for each λ in ``lams`` × the ``inits`` shared inits, trained side by side."""

    def __init__(self, settings: CompareSettings, lams=presets.LAMBDA_SWEEP, budget: Budget | None = None):
        self.lams = LAMBDAS.check(lams)  # sorted, each once; ValueError with one sentence
        super().__init__(settings, budget, self.lams)
        n, k = settings.inits, len(self.lams)
        self.init = initial_params(settings)
        lam = np.repeat(np.asarray(self.lams), n)
        self._add_group(SNF, _tile(with_inverse(self.init), k), lam, np.full(k * n, settings.lr))

    def curves(self) -> dict:
        """Per λ: iteration (E,), loss/angle/inv_err (E, inits), diverged_at (inits,); plus the settings, the λ
        values and the true density's NLL."""
        self.start()
        a = self.groups[SNF].arrays()
        n = self.settings.inits
        per = {}
        for i, lam in enumerate(self.lams):
            sl = slice(i * n, (i + 1) * n)
            d = {key: v[:, sl] for key, v in a.items() if key not in ("iteration", "time", "diverged_at")}
            d["iteration"], d["time"] = a["iteration"], a["time"]
            d["diverged_at"] = a["diverged_at"][sl]
            per[lam] = d
        return {"kind": "lambda_sweep", "settings": self.settings.as_dict(), "true_nll": self.true_nll,
                "status": self.status, "lams": list(self.lams), "per_lambda": per}

    def summary(self) -> list[dict]:
        """``sweep_summary`` of the curves: one row per λ."""
        return sweep_summary(self.curves())
