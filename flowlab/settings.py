"""One settings schema per page (the tables; the machinery is ``flowlab.schema``): every setting's key, kind,
bounds, choices, label, help and URL key, once.  Defaults come from ``flowlab.presets``."""
from __future__ import annotations

from dataclasses import replace

from . import presets
from .activations import ACTIVATION_NAMES, STEPS as ACTIVATION_STEPS, make_activation
from .densities import REGISTRY as DENSITIES
from .custom_densities import BANDWIDTH_RANGE, MAX_TEXT, check_text, text_density
from .flow import TRAINER_INITS
from .gradients import METHODS, PLAYGROUND_METHODS, REGISTRY as METHOD_REGISTRY, TRAIN_METHODS, by_cost, method_name
from .schema import MAX_NAME_CHARS, MAX_SHOWN, Field, Invalid, Schema, literal, plain, shown  # noqa: F401  (re-exported: one import for pages)


def _densities() -> tuple:
    return tuple(DENSITIES)


def _density_label(name: str) -> str:
    d = DENSITIES.get(name)
    return d.label if d is not None else COMPARE_LABELS.get(name, name)


def _method_label(name: str) -> str:
    return METHOD_REGISTRY[name].label if name in METHOD_REGISTRY else name


INIT_LABELS = {"orthogonal": "orthogonal", "identity_noise": "identity + noise", "data": "data-dependent"}
OPTIMIZER_LABELS = {"sgd": "gradient descent", "adam": "Adam"}


def _optimizer_alias(v: str) -> str:
    v = v.strip().lower()
    return "sgd" if v == "gd" else v


def _f(key, kind, label, noun="", **kw) -> Field:
    return Field(key, kind, label, noun, **kw)


# ---- shared training fields ------------------------------------------------------------------------------------------
DENSITY = _f("density", "choice", "Density", "The density", choices=_densities, labels=_density_label,
             group="structural")
LAYERS = _f("layers", "int", "Layers", "The number of layers", lo=1, hi=200, group="structural",
            help="Depth L of the flow: L square layers, the last one affine.")
METHOD = _f("method", "choice", "Gradient method", "The gradient method", choices=PLAYGROUND_METHODS,
            labels=_method_label, alias=method_name, group="structural")
ACTIVATION = _f("activation", "choice", "Activation", "The activation", choices=ACTIVATION_NAMES,
                labels=lambda a: make_activation(a).label, group="structural",
                help="The papers' fixed activations (smooth leaky ReLU, tanh + βx), or learned ones whose parameters "
                     "per unit train by the ordinary gradient while W keeps the chosen method: a slope per unit, or "
                     f"a slope plus {ACTIVATION_STEPS} tanh steps of learned height, sharpness and position (each "
                     f"training step ~{make_activation('learned_steps').step_cost:g}× slower, but far fewer layers "
                     "are needed for several modes).")
LR = _f("lr", "float", "Learning rate", "The learning rate", lo=1e-6, hi=1.0, step=1e-4, group="hyper",
        help="Peak learning rate of Adam; changes apply to the running training without a reset.")
BATCH = _f("batch", "int", "Batch size", "The batch size", lo=1, hi=4096, group="structural")
SEED = _f("seed", "int", "Seed", "The seed", lo=0, hi=2**31 - 1, group="structural",
          help="Same seed → same data and same initial weights.")
NTRAIN = _f("ntrain", "int", "Training points", "The number of training points", lo=100, hi=200_000, step=1000,
            group="structural")
CLIP = _f("clip", "float", "Gradient clipping (max norm)", "The clipping threshold", lo=1e-3, hi=1e6, group="hyper",
          help="Largest global gradient norm; larger gradients are scaled down to it.")
WARMUP = _f("warmup", "int", "Warm-up steps", "The number of warm-up steps", lo=0, hi=100_000, step=50,
            group="hyper")
DECAY = _f("decay", "int", "Decay steps (0 = constant)", "The number of decay steps", lo=0, hi=10_000_000,
           step=1000, group="hyper",
           help="Cosine decay of the learning rate from the end of the warm-up to 5% of its peak at this step; "
                "afterwards it stays at 5%.")
LAM = _f("lam", "float", "λ (self-normalizing reconstruction weight)", "The reconstruction weight λ", lo=0.0,
         hi=1e3, fmt="%.3g", group="hyper")
B2 = _f("b2", "float", "Adam β₂ (second-moment decay)", "Adam's β₂", lo=0.5, hi=0.9999, step=0.001, group="hyper",
        help="Adam divides each step by a running average of squared gradients that forgets with rate 1 − β₂ "
             "(memory ≈ 1/(1 − β₂) steps). 0.999 is Adam's and the paper's default. Applies without a reset.")
INIT = _f("init", "choice", "Initial weights", "The initialisation", choices=TRAINER_INITS, labels=INIT_LABELS,
          group="structural",
          help="Data-dependent: random rotations whose rows are scaled and biases shifted so that every layer's "
               "pre-activation starts with mean 0 and variance 1 on the training data. Orthogonal: the same "
               "rotations with zero biases. Identity + noise: W = I plus small Gaussian noise (Keller et al. App. "
               "A.3).")
CONTOUR = _f("contour", "bool", "Contour lines on the learned density", cli=False, group="display")
SOURCE_LABELS = {"toy": "Toy density", "text": "Your text", "picture": "Your picture", "draw": "Draw",
                 "upload": "Upload CSV"}
SOURCE = _f("source", "choice", "Data", "The data source", choices=tuple(SOURCE_LABELS), labels=SOURCE_LABELS,
            url="data", cli=False, group="structural",
            help="A toy density, text you type, a picture or a drawing (each with its exact density, so the KL is "
                 "known), or points from a CSV file (no true density: the held-out NLL is shown instead).")
def _source_is(kind: str):
    return lambda s: s.get("source") == kind


TEXT = _f("text", "str", "Text to learn", "The text", hi=MAX_TEXT, cli=True, group="structural",
          applies=_source_is("text"),
          help=f"Up to {MAX_TEXT} characters, e.g. your name: the flow learns to put its mass on the letters.")
INVERT = _f("invert", "bool", "Invert: light pixels are dense", "The invert switch", group="structural",
            applies=_source_is("picture"),
            help="A picture's density is high where it is dark; ticked, where it is light.")
BANDWIDTH = _f("bandwidth", "float", "Bandwidth of the drawn density", "The bandwidth", lo=BANDWIDTH_RANGE[0],
               hi=BANDWIDTH_RANGE[1], step=0.01, url="bw", cli=False, group="structural",
               applies=_source_is("draw"),
               help="Each drawn point becomes a small Gaussian of this standard deviation; the density is their "
                    "average.")

TRAINING_FIELDS = (DENSITY, LAYERS, METHOD, ACTIVATION, LR, BATCH, SEED, NTRAIN, CLIP, WARMUP, DECAY, LAM, B2, INIT)


def _playground_defaults(density: str | None = None, method: str | None = None) -> dict:
    density = density or presets.PLAYGROUND_DENSITY
    s = presets.tuned(density, method).settings()
    s.pop("standardize")
    return {"density": density, **s, **presets.PLAYGROUND_EXTRA}


PLAYGROUND = Schema("playground", (SOURCE, TEXT, INVERT, BANDWIDTH) + TRAINING_FIELDS + (CONTOUR,),
                    _playground_defaults, context=("density", "method"))
STRUCTURAL = tuple(f.key for f in PLAYGROUND.fields if f.group == "structural")
HYPER = tuple(f.key for f in PLAYGROUND.fields if f.group == "hyper")

# ---- the command line's training run (same names; more methods) -----------------------------------------------------
TRAIN_METHOD = _f("method", "choice", "Gradient method", "The gradient method", choices=TRAIN_METHODS,
                  labels=_method_label, alias=method_name)


def _train_defaults(density: str | None = None, method: str | None = None) -> dict:
    s = presets.tuned(density, method).settings()
    s.pop("standardize")  # the CLI always standardises unless the paper preset says otherwise
    return {"density": density, **s, "seed": presets.PLAYGROUND_EXTRA["seed"]}


TRAIN = Schema("train", tuple(TRAIN_METHOD if f.key == "method" else f for f in TRAINING_FIELDS), _train_defaults,
               context=("density", "method"))

# ---- Compare -------------------------------------------------------------------------------------------------------------
COMPARE_ND = "gaussian_mixture_nd"
COMPARE_ND_LABEL = "Gaussian mixture with random rotations (any D)"
COMPARE_TEXT = "text"  # the density of the text typed in ``text`` (flowlab.custom_densities.text_density)
COMPARE_LABELS = {COMPARE_ND: COMPARE_ND_LABEL, COMPARE_TEXT: SOURCE_LABELS["text"]}
CURVES_LABELS = {"best": "each method's best rate", "shared": "the shared learning rate"}


def _density_is_text(s: dict) -> bool:
    return s.get("density") == COMPARE_TEXT


def _dim_rule(s: dict):
    if s["density"] != COMPARE_ND and s["dim"] != 2:
        what = "The text density" if _density_is_text(s) else f"The toy density {s['density']!r}"
        return "dim", (f"{what} is 2-D; for D = {s['dim']} choose the Gaussian mixture with random rotations "
                       f"({COMPARE_ND!r}).")
    return None


def _eval_rule(s: dict):
    if s["eval_every"] > s["iters"]:
        return "eval_every", (f"The evaluation interval ({s['eval_every']}) cannot exceed the number of iterations "
                              f"({s['iters']}).")
    return None


def _text_rule(s: dict):
    """The text density needs text with ink: ``check_text``'s sentence for empty text, one for text that draws
    nothing (only characters the font leaves blank)."""
    if not _density_is_text(s):
        return None
    try:
        t = check_text(s["text"])
    except ValueError as e:
        return "text", str(e)
    try:
        text_density(t)
    except ValueError:
        return "text", f"The text {shown(t)} draws no ink to learn; type letters or digits, e.g. FLOW."
    return None


COMPARE = Schema("compare", (
    _f("density", "choice", "Density", "The density", choices=lambda: _densities() + (COMPARE_TEXT, COMPARE_ND),
       labels=_density_label,
       help="A toy density, text you type (its exact density is uniform on the ink of the letters), or a Gaussian "
            "mixture in any dimension D. Pictures and drawings are uploads, not values a link can carry: train "
            "on them in the Playground."),
    replace(TEXT, applies=_density_is_text, group=""),
    _f("dim", "int", "Dimension D", "The dimension D", lo=2, hi=512, step=16,
       help="Only for the Gaussian mixture with random rotations; the toy densities are 2-D. The ordinary "
            "gradient's cost grows like D³ (a matrix inverse per layer), the relative and self-normalizing ones "
            "like N·D²."),
    _f("layers", "int", "Layers", "The number of layers", lo=1, hi=50, help="The paper's Fig. 1 uses two layers."),
    _f("optimizer", "choice", "Optimiser", "The optimiser", choices=("sgd", "adam"),
       labels=lambda o: f"{OPTIMIZER_LABELS[o]} (full batch)", alias=_optimizer_alias, url="opt"),
    _f("lr", "float", "Shared learning rate", "The learning rate", lo=1e-6, hi=10.0, step=0.005,
       help="The one rate every method gets in the shared-rate view (and in the λ sweep); it is always part of the "
            "learning-rate sweep."),
    _f("rates", "floats", "Learning rates tried (each method)", "Each learning rate", lo=1e-6, hi=10.0, max_items=8,
       help="Every method trains from the same inits at each of these rates (comma-separated) and at the shared "
            "rate; the figure of final loss against the rate marks each method's best one."),
    _f("inits", "int", "Initialisations", "The number of initialisations", lo=1, hi=20,
       help="Random initial weights; every method starts from each of them."),
    _f("iters", "int", "Iterations", "The number of iterations", lo=1, hi=20_000, step=100),
    _f("points", "int", "Data points (full batch)", "The number of data points", lo=10, hi=20_000, step=100),
    _f("methods", "multi", "Methods", "The gradient methods", choices=TRAIN_METHODS, labels=_method_label,
       alias=method_name),
    _f("lam", "float", "λ (self-normalizing reconstruction weight)", "The reconstruction weight λ", lo=0.0,
       hi=1e6, help="Keller et al.'s λ (eq. 3: ½(log p_f + log p_g) − λ·reconstruction error), the scale of their "
                    "Table 4."),
    _f("seed", "int", "Seed", "The seed", lo=0, hi=2**31 - 1, help="Same seed → same data and initial weights."),
    _f("activation", "choice", "Activation", "The activation", choices=ACTIVATION_NAMES,
       labels=lambda a: make_activation(a).label),
    _f("init", "choice", "Initial weights", "The initialisation", choices=("orthogonal", "identity_noise"),
       labels=INIT_LABELS),
    _f("eval_every", "int", "Evaluate every (steps, 0 = automatic)", "The evaluation interval", lo=0, hi=1000,
       url=None),
    _f("curves", "choice", "Curves at", "The rate of the curves", choices=tuple(CURVES_LABELS), labels=CURVES_LABELS,
       help="Each method at its own best rate from the sweep (a fair race: equal learning rates are not equal "
            "steps), or every method at the shared learning rate."),
), lambda optimizer=None: {**presets.COMPARE, "text": presets.PLAYGROUND_EXTRA["text"],
                           **({"optimizer": optimizer, "lr": presets.COMPARE_LR[optimizer],
                                                    "rates": presets.COMPARE_RATES[optimizer]} if optimizer else {})},
   context=("optimizer",), rules=(_dim_rule, _eval_rule, _text_rule))

LAMBDAS = _f("lams", "floats", "λ values", "Each λ value", lo=0.0, hi=1e6, max_items=8, url=None,
             help="Reconstruction weights of the sweep, comma-separated: Keller et al.'s λ (eq. 3).")

# ---- Layers ----------------------------------------------------------------------------------------------------------
LAYERS_PAGE = Schema("layers", (
    DENSITY,
    _f("layers", "int", "Layers", "The number of layers", lo=1, hi=100),
    _f("points", "int", "Points to follow", "The number of points", lo=100, hi=2000, step=100, url=None),
    _f("split", "bool", "Affine step and activation as separate stages", url=None,
       help="Show y_k = W_k h_(k−1) + b_k (straight lines stay straight) before h_k = s(y_k) (the activation "
            "bends them)."),
    _f("follow", "bool", "Axes follow each layer's range", url=None,
       help="Off: every stage keeps the axes of the first one, so you see the true scale change."),
), lambda: dict(presets.LAYERS))

# ---- Timing ----------------------------------------------------------------------------------------------------------
TIMING = Schema("timing", (
    _f("dims", "ints", "Dimensions D (comma-separated)", "Each dimension D", lo=2, hi=65536, max_items=40,
       help="Whole numbers between 2 and 65536, e.g. 64, 128, 256."),
    _f("methods", "multi", "Gradient methods", "The gradient methods", choices=METHODS, labels=_method_label,
       alias=method_name, order=by_cost),
    _f("batch", "int", "Batch size B", "The batch size", lo=1, hi=100_000, step=10),
    _f("layers", "int", "Layers", "The number of layers", lo=1, hi=64),
    _f("repeats", "int", "Repeats (median)", "The number of repeats", lo=1, hi=100),
    _f("cap", "float", "Time cap per point (s)", "The time cap per point", lo=0.1, hi=600.0, step=5.0, fmt="%.3g",
       help="A method whose next point would take longer is stopped and marked; so is one that needs more memory "
            "than the machine has."),
    _f("seed", "int", "Seed", "The seed", lo=0, hi=2**31 - 1, url=None),
), lambda: dict(presets.TIMING))

SCHEMAS = {s.name: s for s in (PLAYGROUND, TRAIN, COMPARE, LAYERS_PAGE, TIMING)}
