"""Cost of one gradient evaluation against the dimension D, measured on this machine (Gresele et al. 2020, Fig. 1
left; Keller et al. 2021, Fig. 4): the engine of the Timing page and of ``python -m flowlab bench``
(``flowlab.cli.bench``).

    config   BenchConfig on the settings schema's TIMING fields, the default grid, parse_dims / parse_methods
    measure  one (method, D) point: guard (before any input exists), compile, warm up, sample (flowlab.timing);
             the whole grid's estimate and the sentence that refuses a grid that cannot run
    result   Point, BenchResult (views, JSON/CSV), recorded runs, the headline and captions the page shows
    stability  a run's repeat spread (speed-up and slopes over the middle half of the repeats), the rule that lets a
             live run replace the recorded headline, and the choice of the headline's run
    runner   BenchmarkRun (one point per step), iter_benchmark, run_benchmark, BenchmarkWorker (background thread)

Pure JAX/numpy: never imports streamlit."""
from ..gradients import METHODS
from ..metrics import fit_slope
from .config import (ALL_METHODS, CUSTOM, FIT_RANGE, GRIDS, MAX_DIM, MIN_DIM, BenchConfig, default_dims,
                     default_max_dim, dims_text, grid_name, parse_dims, parse_methods)
from .measure import (MIN_SAMPLE_S, GridEstimate, default_mem_limit, grid_estimate, grid_refusal, guard, make_inputs,
                      measure_point, point_cost, predict_time)
from .result import (SCHEMA, STATUS_LABELS, STATUSES, BenchResult, Metric, Point, file_name, headline,
                     load_recorded, method_label, newest_per_platform, run_caption, stopped_caption)
from .runner import BenchmarkRun, BenchmarkWorker, iter_benchmark, progress, run_benchmark
from .stability import (Headline, Spread, Stability, choose_headline, quartiles, ratio_spread, rule_text,
                        slope_spread, stability)

__all__ = ["ALL_METHODS", "BenchConfig", "BenchResult", "BenchmarkRun", "BenchmarkWorker", "CUSTOM", "FIT_RANGE",
           "GRIDS", "GridEstimate", "MAX_DIM", "METHODS", "MIN_DIM", "MIN_SAMPLE_S", "Metric", "Point", "SCHEMA",
           "STATUSES", "grid_estimate", "grid_refusal", "guard", "point_cost",
           "STATUS_LABELS", "default_dims", "default_max_dim", "default_mem_limit", "dims_text", "file_name",
           "fit_slope", "grid_name", "headline", "iter_benchmark", "load_recorded", "make_inputs",
           "measure_point", "method_label", "newest_per_platform", "parse_dims", "parse_methods", "predict_time",
           "progress", "run_benchmark", "run_caption", "stopped_caption", "Headline", "Spread", "Stability",
           "choose_headline", "quartiles", "ratio_spread", "rule_text", "slope_spread", "stability"]
