"""Lesson 1 (flowlab.lessons.change_of_variables): the push-forward density integrates to one and matches a histogram
of pushed samples; without |dx/dz| it does not."""
import math

import numpy as np
import pytest

from flowlab import lessons as L

MAPS = [L.Map1D("affine", 2.0, 1.0), L.Map1D("tanh_linear", 1.5, 0.2), L.Map1D("smooth_leaky_relu", 0.3)]


@pytest.mark.parametrize("fmap", MAPS, ids=lambda m: m.name)
@pytest.mark.parametrize("base", L.BASES_1D)
def test_pushforward_density_integrates_to_one_and_matches_histogram(fmap, base):
    r = L.change_of_variables_1d(fmap, L.Base1D(base), n=20_000, bins=40, seed=3)
    assert abs(r["mass_x"] - 1) < 1e-3 and abs(r["mass_z"] - 1) < 1e-3
    # chi-square with `dof` degrees of freedom: mean dof, std sqrt(2 dof); 5 std is a loose but real bound
    assert r["chi2"] < r["dof"] + 5 * math.sqrt(2 * r["dof"])
    # the histogram's bin probabilities agree with the exact ones from the CDF
    assert np.isclose(r["bin_prob"].sum(), 1.0, atol=0.01)


@pytest.mark.parametrize("fmap", MAPS[1:], ids=lambda m: m.name)
def test_dropping_the_jacobian_factor_breaks_normalisation(fmap):
    r = L.change_of_variables_1d(fmap, L.Base1D("gaussian"))
    wrong = r["px"]  # p_X(x) drawn at z = f(x) without |dx/dz|
    assert abs(np.trapezoid(wrong, r["z"]) - 1) > 0.05
    assert np.allclose(r["pz"], r["px"] * r["dxdz"])


@pytest.mark.parametrize("fmap", MAPS, ids=lambda m: m.name)
def test_map_inverse_and_derivative(fmap, x64):
    x = np.linspace(-4, 4, 101)
    assert np.allclose(fmap.inverse(fmap(x)), x, atol=1e-9)
    h = 1e-5
    assert np.allclose(fmap.deriv(x), (fmap(x + h) - fmap(x - h)) / (2 * h), atol=1e-6)


def test_bad_maps_are_rejected_with_a_message():
    with pytest.raises(ValueError, match="positive slope"):
        L.Map1D("affine", -1.0)
    with pytest.raises(ValueError, match="alpha"):
        L.Map1D("smooth_leaky_relu", 1.5)
    with pytest.raises(ValueError, match="Unknown map"):
        L.Map1D("relu")
    with pytest.raises(ValueError, match="Unknown 1-D density"):
        L.Base1D("uniform")
    with pytest.raises(ValueError, match="at least 10 samples"):
        L.change_of_variables_1d(MAPS[0], n=5)
