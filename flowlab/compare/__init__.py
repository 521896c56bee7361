"""Convergence experiments: ordinary vs relative vs self-normalizing gradients from the same initial weights
(Gresele et al. 2020, Fig. 1 right; Keller et al. 2021, Fig. 3 and Table 4).  Pure JAX/numpy, no plots, no streamlit.

    settings.py   CompareSettings: the COMPARE schema as a frozen dataclass (checks, ``every``, ``spec``, command)
    cost.py       the estimate before anything starts (``flowlab.budget``) and the sentence that refuses a run
    data.py       the experiment's points: a toy density, or MixtureND (rotated Gaussian mixture in any D)
    jobs.py       ConvergenceRun and LambdaSweep: jitted full-batch pieces, vmapped over rates (or λ) × inits, timed
    summary.py    bands, iterations to a level, summary rows and tables, divergence notes, the long CSV
    rates.py      the learning-rate sweep: final loss per rate, each method's best rate (``RULE``), the curves cut
                  at one rate per method, and the conclusion computed from them

The figures are ``flowlab.plots.compare``; the command line is ``flowlab.cli.figure`` (``python -m flowlab
figure``); URL parse and dump are ``flowlab.settings.COMPARE.parse_query`` / ``dump_query``."""
from .cost import check, fewer_rates, job_cost, refusal_text
from .data import MixtureND, make_data, mixture_nd
from .jobs import COMPILED, CompareJob, CompiledCache, ConvergenceRun, LambdaSweep, initial_params, with_inverse
from .rates import (RULE, at_rates, best_rate, best_rates, conclusion, loss_conclusion, results, shown_rates,
                    sweep_rows, time_conclusion)
from .settings import CompareSettings
from .summary import (CSV_COLUMNS, angle_sentence, band, convergence_table, curves_to_csv, divergence_notes,
                      iterations_to_reach, rate_of, summary_rows, sweep_summary, sweep_table)

__all__ = ["CompareSettings", "CompareJob", "ConvergenceRun", "LambdaSweep", "MixtureND", "mixture_nd", "make_data",
           "check", "job_cost", "refusal_text", "fewer_rates", "COMPILED", "CompiledCache",
           "initial_params", "with_inverse", "band", "iterations_to_reach", "summary_rows",
           "sweep_summary", "convergence_table", "sweep_table", "divergence_notes", "curves_to_csv", "CSV_COLUMNS",
           "RULE", "sweep_rows", "best_rate", "best_rates", "shown_rates", "at_rates", "results", "loss_conclusion",
           "time_conclusion", "conclusion", "angle_sentence", "rate_of"]
