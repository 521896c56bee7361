"""Where the Layers page's model comes from — the Playground's session, a model file, or a small flow trained here —
the points to follow through it, the base points and grid of the generative view, and its one-line description."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import presets
from ..densities import REGISTRY as DENSITIES, get_density
from ..files import load_model, saved_density
from ..flow import FlowSpec, Norm
from ..gradients import REGISTRY as METHODS, method_name
from ..schema import MAX_NAME_CHARS, literal
from ..train import build_trainer
from .grids import GRID_LINES, POLAR_RADII, POLAR_RAYS, POLAR_R_MAX, angle_sectors, cartesian_lines, polar_lines
from .paths import pull
from .views import ANGLE_NOUN, LABEL_NOUN, square_range, subsample


class LayerModel(NamedTuple):
    """A 2-D flow plus the points to follow through it.

    data (N, 2) raw points; labels (N,) integer group per point (mode/arm, or the angle sector of z when the points
    were sampled from the flow itself) or None; label_noun names a group ("moon", "arm", "angle of z")."""

    spec: FlowSpec
    params: dict
    norm: Norm | None
    data: np.ndarray
    labels: np.ndarray | None
    density: str | None
    source: str  # "playground" | "file" | "trained"
    method: str | None = None
    label_noun: str | None = None
    note: str = ""


N_POINTS = 1000  # points kept from a source: the view slider shows at most 2000, subsampled from these
SMALL_STEPS = presets.LAYERS_SMALL_STEPS
SMALL_LR = presets.LAYERS_SMALL.lr
SMALL_SETTINGS = {k: v for k, v in presets.LAYERS_SMALL.settings().items()
                  if k not in ("layers", "warmup", "decay")}  # depth: the page; schedule: from the steps
SMALL_TEST_POINTS = 1000
SMALL_CHUNK_MAX = 500  # at most this many steps per jitted chunk (a progress point at least every 500 steps)
POINTS_SEED, TRAINED_POINTS_SEED = 1, 7  # fixed subsets: the same points on every redraw


def _check_2d(spec: FlowSpec, params: dict, what: str):
    W = np.asarray(params.get("W")) if isinstance(params, dict) else None
    if W is None or W.ndim != 3 or W.shape[1] != W.shape[2]:
        raise ValueError(f"The {what} has no (L, D, D) weight stack W.")
    if W.shape[1] != 2 or int(spec.dim) != 2:
        raise ValueError(f"The {what} is {W.shape[1]}-dimensional; the Layers page draws 2-D flows only.")
    if W.shape[0] != int(spec.layers):
        raise ValueError(f"The {what} says {spec.layers} layers but holds {W.shape[0]} weight matrices.")


def model_from_session(d) -> LayerModel:
    """The Playground's published model (dict with spec, params, norm, density, data, labels, method, source)."""
    if not isinstance(d, dict):
        raise ValueError("The Playground's model is not in the expected form (a dict).")
    missing = [k for k in ("spec", "params", "data") if k not in d]
    if missing:
        raise ValueError(f"The Playground's model lacks {', '.join(missing)}.")
    spec, params = d["spec"], d["params"]
    if not isinstance(spec, FlowSpec):
        raise ValueError("The Playground's model has no FlowSpec.")
    _check_2d(spec, params, "Playground's model")
    data = np.asarray(d["data"], np.float64)
    if data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
        raise ValueError(f"The Playground's points must be an (N, 2) array, got shape {data.shape}.")
    if not np.all(np.isfinite(np.asarray(params["W"]))):
        raise ValueError("The Playground's model has NaN or infinite weights (training diverged); reset it there.")
    labels = d.get("labels")
    if labels is not None:
        labels = np.asarray(labels, np.int64)
        if labels.shape != (len(data),):
            labels = None
    density = d.get("density") if d.get("density") in DENSITIES else None
    keep = subsample(len(data), N_POINTS, seed=POINTS_SEED)
    return LayerModel(spec, params, d.get("norm"), data[keep], None if labels is None else labels[keep], density,
                      "playground", d.get("method"), LABEL_NOUN.get(density or "", None))


def flow_points(spec: FlowSpec, params: dict, norm: Norm | None, n: int, seed: int):
    """Points sampled from the flow itself, labelled by the angle sector of their base point z (non-finite images,
    where the inverse overflowed, are dropped)."""
    z = np.random.default_rng(seed).standard_normal((n, 2))
    x = pull(spec, params, norm, z).values[-1]
    ok = np.all(np.isfinite(x), axis=1)
    return x[ok], angle_sectors(z[ok])


def model_from_file(raw, n_points: int = N_POINTS, seed: int = 0) -> LayerModel:
    """A model file (.npz bytes, see flowlab.files).  If it holds the user-made density it was trained on, or its
    config names a known density, points are drawn from that density (with their part or mode/arm labels); otherwise they are sampled from the flow and coloured by the angle of
    z.  Raises ValueError with one sentence for any malformed file (load_model checks types, values and caps)."""
    spec, params, norm, meta = load_model(raw)
    _check_2d(spec, params, "model file")
    density = meta.get("density") if meta.get("density") in DENSITIES else None
    own = saved_density(meta)  # a typed text, picture or drawing saved with the model
    if own is not None:
        density = None
        data, labels = own.sample_labeled(n_points, seed=seed)
        noun = "part"  # a raster's left-to-right quarters, a drawing's eighths in drawing order
    elif density:
        data, labels = get_density(density).sample_labeled(n_points, seed=seed)
        noun = LABEL_NOUN.get(density)
    else:
        data, labels = flow_points(spec, params, norm, n_points, seed)
        noun = ANGLE_NOUN
        if len(data) < n_points // 2:  # else the pictures show only the few samples that happened not to overflow
            raise ValueError(f"Only {len(data)} of {n_points} points sampled from the model file's flow are finite "
                             "numbers (its inverse overflows float32); the Layers page cannot draw it.")
    steps = meta.get("steps")
    note = f"trained {int(steps):,} steps" if steps is not None else ""
    return LayerModel(spec, params, norm, data, labels, density, "file", meta.get("method"), noun, note)


def small_steps(layers: int) -> int:
    """Optimiser steps for a model trained here: SMALL_STEPS up to 12 layers, fewer for deeper flows (each step
    costs about L times more), never below 600, so training stays within a few seconds."""
    return int(max(600, min(SMALL_STEPS, round(SMALL_STEPS * 12 / max(1, int(layers)), -2))))


def train_small(density: str, layers: int, seed: int = 0, steps: int | None = None,
                n_points: int = N_POINTS) -> LayerModel:
    """A small flow trained here in a few seconds (relative gradient, Adam, short warm-up, cosine-decayed learning
    rate over the whole run)."""
    steps = small_steps(layers) if steps is None else int(steps)
    chunk = math.ceil(steps / math.ceil(steps / SMALL_CHUNK_MAX))  # equal chunks that end exactly at ``steps``
    t = build_trainer(density, layers=int(layers), seed=int(seed), chunk=chunk, ntest=SMALL_TEST_POINTS,
                      warmup=min(100, steps // 10), decay=steps, **SMALL_SETTINGS)
    t.train(steps=steps)
    data, labels = get_density(density).sample_labeled(n_points, seed=int(seed) + TRAINED_POINTS_SEED)
    kl = t.evals["kl"][-1] if t.evals["kl"] else float("nan")
    note = f"trained here for {t.step:,} steps, KL(p‖q) ≈ {kl:.2f} nats"
    if t.divergences:
        note += " (training stopped early: it diverged)"
    return LayerModel(t.spec, t.params, t.norm, data, labels, density, "trained", SMALL_SETTINGS["method"],
                      LABEL_NOUN.get(density), note)


def view_range(model: LayerModel):
    """Square plot range of the data plane."""
    return square_range(model.data, q=0.5, margin=0.15)


# ---- the page's words about the model --------------------------------------------------------------------------------
def describe(model: LayerModel, file_name: str | None = None) -> str:
    """The one-line (markdown) description at the top of the page: depth, density, where the model comes from,
    activation, gradient method and any note.  Names from a file (its name, an unknown method) are shown as
    ``literal`` code spans, never as markdown."""
    name = f" {literal(file_name, MAX_NAME_CHARS)}" if file_name else ""
    where = {"playground": "from the Playground", "file": f"from the file{name}",
             "trained": "trained on this page"}.get(model.source, model.source)
    what = f"on **{DENSITIES[model.density].label}**" if model.density in DENSITIES else "on uploaded data"
    bits = [f"**{int(model.spec.layers)}-layer** flow {what}, {where}", model.spec.activation.label]
    if model.method:
        m = method_name(model.method)
        bits.append(METHODS[m].label if m in METHODS else f"{literal(model.method, MAX_NAME_CHARS)} gradient")
    if model.note:
        bits.append(model.note)
    return " · ".join(bits)


def colouring(model: LayerModel, has_labels: bool) -> str:
    """How the points are coloured, as a phrase ("coloured by the moon they came from")."""
    if model.label_noun == ANGLE_NOUN:
        return "coloured by the angle of the base point they were sampled from"
    if has_labels:
        return f"coloured by the {model.label_noun or 'group'} they came from"
    return "uploaded data has no groups"


# ---- the generative view's base points and grid ----------------------------------------------------------------------
BASE_SEED = 11  # base samples z: fixed, so the same points are followed on every redraw
BASE_GRIDS = ("polar", "cartesian")
BASE_RANGE = ((-POLAR_R_MAX, POLAR_R_MAX), (-POLAR_R_MAX, POLAR_R_MAX))


def base_points(n: int, seed: int = BASE_SEED) -> tuple[np.ndarray, np.ndarray]:
    """n base samples z ~ N(0, I) in 2-D and their angle sectors (their colours)."""
    z = np.random.default_rng(seed).standard_normal((int(n), 2))
    return z, angle_sectors(z)


def base_grid(kind: str) -> tuple[np.ndarray, int]:
    """A grid in the base space, as lines, and how many lines form its first family (drawn in the first colour):
    "polar" — circles of radius 0.5 … 3 then rays; "cartesian" — lines of constant z₁ then of constant z₂ over
    [−3, 3]²."""
    if kind == "polar":
        return polar_lines(POLAR_RADII, POLAR_RAYS, POLAR_R_MAX), len(POLAR_RADII)
    if kind == "cartesian":
        return cartesian_lines(BASE_RANGE, GRID_LINES), GRID_LINES
    raise ValueError(f"Unknown grid {kind!r}; choose one of: {', '.join(BASE_GRIDS)}.")
