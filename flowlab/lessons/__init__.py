"""Numerics behind the seven lessons of the Learn page.  Pure numpy/JAX, no UI; every number the page shows comes
from here and is unit-tested (tests/test_lessons_*.py).

    change_of_variables  1. change of variables in 1-D (Zhao §1):  p_Z(z) = p_X(x) |dx/dz|,  z = f(x)
    linear_maps          2. 2-D linear maps (Zhao §3.3): area ratio = |det A|;  x = A u, u ~ N(0, I) => N(0, A Aᵀ)
    cost, cost_probe     3. cost of det / inverse vs D (Gresele §2.3, Zhao §3.1, 3.4–3.5), triangular factors
    relative             4. the relative gradient (Gresele §4, eqs. 10–15)
    self_normalizing     5. self-normalizing flows: Rᵀ in place of W^{-T} (Keller et al. eq. 3, §4.1 eqs. 8–11), the
                            angle along the way to a linear flow's optimum, and what λ does
    linear_flow          6. linear flows reach the closed-form bound (Liao & He App. A.2; formulas in flowlab.theory)
    learned_activation   7. learned activations: s(x; θ) per unit, log-det Σ log s' + log|det W| (Gresele eq. 9), θ's
                            ordinary gradient beside W's method, parameter counts D² vs D·(1+3M), s' ≥ e^ρ > 0
    links                "try it" links to the other pages, checked against their settings schemas
"""
from ..metrics import LOG2PI, loglog_slope
from ..activations import STEPS as ACTIVATION_STEPS
from .change_of_variables import (BASE_LABELS, BASES_1D, MAP_LABELS, MAPS_1D, Base1D, Map1D,
                                  change_of_variables_1d)
from .cost import OP_LABELS, OP_ORDER, TIMED_OPS, lu_check, lu_nopivot, time_linear_algebra, triangular_dependence
from .learned_activation import (DIMS_SHOWN, GRADIENT_TOL, LESSON_DENSITIES, LESSON_OVERRIDES, LESSON_SEED,
                                 LESSON_STEPS, activation_curves, gradient_summary, initial_view,
                                 learned_activation_lesson, lesson_activation, lesson_cost, lesson_refusal,
                                 lesson_settings, monotonicity, parameter_counts, step_cost_ratio,
                                 theta_gradient_check, theta_movement)
from .linear_flow import (LINEAR_DATA, LINEAR_DATA_LABELS, LinearRun, linear_flow_summary, linear_flow_trainer,
                          linear_lesson_data, train_linear_flow)
from .linear_maps import (COMPOSE_MAPS, compose_2d, gaussian_log_density, induced_log_density, linear_map_2d,
                          polygon_area, rotation)
from .links import TRY_IT_PAGES, try_it_url
from .relative import (fd_grad_logdet, logabsdet, random_matrix, relative_gradient_check, relative_update_check,
                       relative_update_crossover, relative_update_fast, relative_update_flops,
                       relative_update_naive)
from .self_normalizing import (SNF_BATCH, SNF_ERRORS, SNF_LAMBDAS, angle_deg, linear_layer_grads, path_point,
                               snf_angle_path, snf_inverse, snf_lambda_runs, snf_lambda_summary, snf_path_summary,
                               snf_problem)

__all__ = ["LOG2PI", "MAPS_1D", "MAP_LABELS", "BASES_1D", "BASE_LABELS", "Base1D", "Map1D", "change_of_variables_1d",
           "polygon_area", "linear_map_2d", "induced_log_density", "gaussian_log_density", "compose_2d", "rotation",
           "COMPOSE_MAPS", "TIMED_OPS", "OP_LABELS", "OP_ORDER", "time_linear_algebra", "loglog_slope",
           "lu_nopivot", "lu_check", "triangular_dependence", "random_matrix", "logabsdet", "fd_grad_logdet",
           "relative_gradient_check", "relative_update_naive", "relative_update_fast", "relative_update_check",
           "relative_update_flops", "relative_update_crossover", "angle_deg", "linear_layer_grads", "snf_problem",
           "path_point", "snf_inverse",
           "snf_angle_path", "snf_lambda_runs", "snf_path_summary", "snf_lambda_summary", "SNF_BATCH",
           "SNF_ERRORS", "SNF_LAMBDAS",
           "LINEAR_DATA", "LINEAR_DATA_LABELS", "linear_lesson_data", "linear_flow_trainer", "linear_flow_summary",
           "LinearRun", "train_linear_flow", "TRY_IT_PAGES", "try_it_url",
           "ACTIVATION_STEPS", "DIMS_SHOWN", "GRADIENT_TOL", "LESSON_DENSITIES", "LESSON_OVERRIDES", "LESSON_SEED",
           "LESSON_STEPS", "activation_curves", "gradient_summary", "initial_view", "learned_activation_lesson",
           "lesson_activation", "lesson_cost", "lesson_refusal", "lesson_settings", "monotonicity", "theta_movement",
           "parameter_counts", "step_cost_ratio", "theta_gradient_check"]
