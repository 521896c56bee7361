"""flowlab.plots.learn: every builder returns a figure; colours come from the palette (flowlab.plots.style)."""
import inspect
import re

import numpy as np
import plotly.graph_objects as go

from flowlab import lessons as L
from flowlab.plots import learn as P


def test_figure_builders_return_figures():
    r1 = L.change_of_variables_1d(L.Map1D("tanh_linear", 1.5, 0.2), L.Base1D("bimodal"), n=500, bins=10)
    figs = [P.change_of_variables_figure(r1, "f"), P.linear_map_figure(L.linear_map_2d([[1, 0.5], [0, -1]])),
            P.timing_figure({"dims": np.array([8, 16]), "times": {"slogdet": np.array([1e-6, 3e-6])},
                             "slopes": {"slogdet": 1.6}}, L.OP_LABELS),
            P.dependence_figure(np.ones((3, 3)), np.tril(np.ones((3, 3)))),
            P.flops_figure([16, 64], 8, L.relative_update_flops), P.snf_angle_figure(L.snf_angle_curve(3, 16)),
            P.snf_learning_figure(L.snf_learn_inverse(3, 16, 5)),
            P.linear_training_figure([0, 25], [3.0, 2.6], 2.55, 2.5, [25], [2.6])]
    for f in figs:
        assert isinstance(f, go.Figure) and len(f.data) >= 1
    # the histogram and the formula share the output panel; |dx/dz| sits on the secondary axis
    assert any(t.name == "|dx/dz| (right axis)" and t.yaxis != "y3" for t in figs[0].data)


def test_no_colour_literals():
    src = inspect.getsource(P)
    assert not re.search(r"#[0-9a-fA-F]{3,6}\b", src)
    assert not re.search(r"rgba\(\s*\d", src)  # translucent colours only through style.rgba()
