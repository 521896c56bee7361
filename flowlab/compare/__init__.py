"""Convergence experiments: ordinary vs relative vs self-normalizing gradients from the same initial weights
(Gresele et al. 2020, Fig. 1 right; Keller et al. 2021, Fig. 3 and Table 4).  Pure JAX/numpy, no plots, no streamlit.

    settings.py   CompareSettings: the COMPARE schema as a frozen dataclass (checks, ``every``, ``spec``, command)
    cost.py       the estimate before anything starts (``flowlab.budget``) and the sentence that refuses a run
    data.py       the experiment's points: a toy density, or MixtureND (rotated Gaussian mixture in any D)
    jobs.py       ConvergenceRun and LambdaSweep: jitted full-batch pieces, vmapped over the inits, timed alone
    summary.py    bands, iterations to a level, summary rows and tables, divergence notes, the long CSV

The figures are ``flowlab.plots.compare``; the command line is ``flowlab.cli.figure`` (``python -m flowlab
figure``); URL parse and dump are ``flowlab.settings.COMPARE.parse_query`` / ``dump_query``."""
from .cost import check, job_cost, refusal_text
from .data import MixtureND, make_data, mixture_nd
from .jobs import COMPILED, CompareJob, CompiledCache, ConvergenceRun, LambdaSweep, initial_params, snf_angle, with_inverse
from .settings import CompareSettings
from .summary import (CSV_COLUMNS, band, convergence_table, curves_to_csv, divergence_notes, iterations_to_reach,
                      summary_rows, sweep_summary, sweep_table)

__all__ = ["CompareSettings", "CompareJob", "ConvergenceRun", "LambdaSweep", "MixtureND", "mixture_nd", "make_data",
           "check", "job_cost", "refusal_text", "COMPILED", "CompiledCache",
           "initial_params", "with_inverse", "snf_angle", "band", "iterations_to_reach", "summary_rows",
           "sweep_summary", "convergence_table", "sweep_table", "divergence_notes", "curves_to_csv", "CSV_COLUMNS"]
