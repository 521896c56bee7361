"""Layer-by-layer views of a fully connected flow (Liao & He, Fig. 3 and 4c; Gresele et al. §3, eq. 9).

Plain math on arrays; figure builders live in ``flowlab.plots.layers``, the page's settings in
``flowlab.settings.LAYERS_PAGE`` (defaults: ``flowlab.presets.LAYERS``).

    paths    points followed x -> z (push) and z -> x (pull), jitted once per FlowSpec in fixed-size blocks
    grids    cartesian and polar grid lines, a plane of points, angle sectors of base points
    volume   per-layer log-det split (log|det W_k| + Σ log s′), local log-det fields, the check against log q(x)
    views    which stages and depths to show, square plot ranges, subsets, legend names
    models   where the model comes from (Playground, file, trained here), its description, the base points and grid
"""
from ..flow import model_log_prob
from . import grids, models, paths, views, volume
from .grids import GRID_LINES, angle_sectors, cartesian_lines, plane_grid, polar_lines
from .models import (BASE_GRIDS, N_POINTS, SMALL_LR, SMALL_STEPS, LayerModel, base_grid, base_points, colouring,
                     describe, flow_points, model_from_file, model_from_session, small_steps, train_small, view_range)
from .paths import Path, pull, pull_lines, push, push_lines, sub
from .views import (ANGLE_NOUN, LABEL_NOUN, MAX_FRAMES, MAX_FRAMES_SPLIT, MAX_PANELS, MAX_PANELS_SPLIT,
                    SUBSAMPLE_FROM, count_nonfinite, label_names, pick_depths, pick_stages, sector_names,
                    select_stages, span, square_range, stage_ranges, subsample, take, view_depths, without_kind)
from .volume import (Field, LogdetSplit, VolumeSummary, layer_logdet_at_input, local_logdet, logdet_check, logdet_field,
                     logdet_split, volume_summary)

__all__ = ["Path", "push", "pull", "push_lines", "pull_lines", "cartesian_lines", "polar_lines", "angle_sectors",
           "LogdetSplit", "logdet_split", "layer_logdet_at_input", "local_logdet", "pick_stages", "square_range", "stage_ranges",
           "span", "subsample", "label_names", "sub", "pick_depths", "select_stages", "take", "without_kind",
           "view_depths", "plane_grid", "Field", "logdet_field", "logdet_check", "LayerModel", "model_from_session",
           "model_from_file", "model_log_prob", "train_small", "small_steps", "view_range", "sector_names",
           "ANGLE_NOUN", "LABEL_NOUN", "GRID_LINES", "N_POINTS", "SMALL_STEPS", "SMALL_LR", "SUBSAMPLE_FROM",
           "MAX_PANELS", "MAX_PANELS_SPLIT", "MAX_FRAMES", "MAX_FRAMES_SPLIT", "flow_points", "describe",
           "colouring", "base_points", "base_grid", "BASE_GRIDS", "VolumeSummary", "volume_summary",
           "count_nonfinite", "grids", "models", "paths", "views", "volume"]
