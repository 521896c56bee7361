"""flowlab.plots.compare and flowlab.plots.export: the figures take method colours and labels from the registry,
their titles use the schema's names, and the PNG writer says why when it cannot render."""
import builtins

import numpy as np
import pytest

from flowlab.compare import CompareSettings
from flowlab.gradients import REGISTRY
from flowlab.plots import export
from flowlab.plots.compare import convergence_figure, lambda_figure
from flowlab.plots.style import ALARM


def _curves(methods=("inverse", "relative", "self_normalizing"), E=4, n=3, **settings):
    rng = np.random.default_rng(0)
    per = {}
    for m in methods:
        loss = 3.0 - np.linspace(0, 1, E)[:, None] + 0.01 * rng.standard_normal((E, n))
        d = {"iteration": np.arange(E), "time": np.linspace(0, 0.01, E), "loss": loss,
             "diverged_at": np.full(n, -1), "compile_s": 0.1}
        if REGISTRY[m].learned_inverse:
            d.update(angle=np.full((E, n), 0.1), inv_err=np.full((E, n), 1e-3), recon=np.full((E, n), 1e-4))
        per[m] = d
    s = CompareSettings(inits=n, **settings).as_dict()
    return {"kind": "convergence", "settings": s, "true_nll": 2.5, "status": "Finished.", "methods": per}


def test_convergence_figure_uses_the_registry_and_schema_names():
    c = _curves(optimizer="sgd")
    fig = convergence_figure(c)
    lines = [t for t in fig.data if t.mode == "lines" and t.showlegend is not False and t.line.color]
    by_name = {t.name: t.line.color for t in lines}
    for m in c["methods"]:
        assert by_name[REGISTRY[m].short] == REGISTRY[m].color
    title = fig.layout.title.text
    assert "same 3 initial weights" in title and "gradient descent lr 0.02" in title and "1,000 points" in title
    assert len(fig.layout.annotations) >= 4  # the self-normalizing panels are there
    assert "Adam" in convergence_figure(_curves(optimizer="adam", lr=0.005)).layout.title.text


def test_convergence_figure_marks_divergence_and_draws_without_snf():
    c = _curves(methods=("relative",))
    c["methods"]["relative"]["diverged_at"][:] = [2, -1, -1]
    c["methods"]["relative"]["loss"][2:, 0] = np.nan
    fig = convergence_figure(c, band_kind="minmax", show_runs=True)
    assert any("1/3 diverged" in (t.name or "") for t in fig.data)
    assert any(t.mode == "markers" and t.marker.color == ALARM for t in fig.data)
    assert fig.layout.height == 420  # one row without the self-normalizing flow


def test_lambda_figure_counts_failed_inits():
    lams = [0.0, 1.0]
    base = _curves(methods=("self_normalizing",))
    d = base["methods"]["self_normalizing"]
    bad = {**d, "diverged_at": np.array([1, -1, -1])}
    c = {"kind": "lambda_sweep", "settings": base["settings"], "true_nll": 2.5, "status": "Finished.", "lams": lams,
         "per_lambda": {0.0: bad, 1.0: d}}
    fig = lambda_figure(c)
    assert any(t.text is not None and "1/3" in list(t.text) for t in fig.data)
    assert "3 shared inits" in fig.layout.title.text


def test_write_png_without_kaleido_or_playwright_says_why(monkeypatch, tmp_path):
    real = builtins.__import__

    def no_renderers(name, *a, **kw):
        if name in ("kaleido", "playwright.sync_api"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_renderers)
    with pytest.raises(RuntimeError, match="kaleido or playwright"):
        export.write_png(convergence_figure(_curves()), str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()
