"""Lesson 2 (flowlab.lessons.linear_maps): areas scale by det A, x = A u is N(0, A Aᵀ), determinants multiply."""
import numpy as np
import pytest

from flowlab import lessons as L


@pytest.mark.parametrize("A", [[[2.0, 0.5], [0.3, 1.0]], [[0.0, 1.0], [1.0, 0.0]], [[0.2, -1.3], [0.7, 0.4]]])
def test_area_ratio_is_det(A):
    r = L.linear_map_2d(A)
    assert np.isclose(r["signed_area_ratio"], np.linalg.det(A), rtol=1e-10)  # signed: a reflection flips orientation
    assert np.isclose(np.prod(r["singular_values"]), abs(r["det"]))


def test_area_ratio_is_signed_and_its_size_is_the_area_growth():
    """The lesson's "signed area ratio": negative exactly when A reverses orientation; its absolute value is how
    much the ellipse's (unsigned) area exceeds the circle's."""
    A = np.array([[0.3, 1.0], [1.2, 0.5]])  # det = 0.15 − 1.2 = −1.05
    r = L.linear_map_2d(A)
    assert r["signed_area_ratio"] < 0 and r["det"] < 0
    area = abs(L.polygon_area(r["ellipse"])) / abs(L.polygon_area(r["circle"]))
    assert area == pytest.approx(abs(r["signed_area_ratio"]), rel=1e-12)
    assert L.linear_map_2d(A @ np.diag([1.0, -1.0]))["signed_area_ratio"] == pytest.approx(1.05)


def test_induced_gaussian():
    A = np.array([[1.5, 0.4], [-0.6, 0.8]])
    r = L.linear_map_2d(A, n_samples=40_000, seed=1)
    emp = np.cov(r["x_samples"].T)
    assert np.allclose(emp, A @ A.T, atol=0.05 * np.abs(A @ A.T).max())
    x = np.random.default_rng(0).standard_normal((50, 2)) * 2
    assert np.allclose(L.induced_log_density(A, x), L.gaussian_log_density(A @ A.T, x), atol=1e-10)


def test_composition_multiplies_determinants():
    A, B = L.rotation(30) @ np.diag([2.0, 0.5]), np.array([[1.0, 0.7], [0.0, 1.3]])
    c = L.compose_2d(A, B)
    assert np.isclose(c["det_BA"], c["det_A"] * c["det_B"])
    assert np.isclose(L.linear_map_2d(c["BA"])["signed_area_ratio"], c["det_A"] * c["det_B"])


def test_the_lessons_second_maps():
    dets = {name: np.linalg.det(B) for name, B in L.COMPOSE_MAPS.items()}
    assert dets == pytest.approx({"rotation by 45°": 1.0, "shear [[1, 0.8], [0, 1]]": 1.0,
                                  "scaling diag(2, 0.5)": 1.0, "reflection diag(1, −1)": -1.0})
    np.testing.assert_allclose(L.COMPOSE_MAPS["rotation by 45°"] @ [1.0, 0.0], [2 ** -0.5, 2 ** -0.5])


def test_singular_matrix_has_no_density():
    with pytest.raises(ValueError, match="singular"):
        L.induced_log_density([[1.0, 2.0], [0.5, 1.0]], np.zeros((1, 2)))
    with pytest.raises(ValueError, match="2 x 2"):
        L.linear_map_2d(np.eye(3))
