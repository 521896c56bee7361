"""flowlab.custom_densities: text, pictures and drawings as densities with an exact log-density — mass 1, samplers
that match the density (χ² on a grid), exact entropies, and one-sentence refusals for bad input."""
import io

import numpy as np
import pytest
from PIL import Image

from flowlab.custom_densities import (MAX_TEXT, image_density, points_density, raster_density, text_density,
                                      from_source)
from flowlab.layerviz.grids import plane_grid


def _png(array, mode="L", fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8), mode).save(buf, format=fmt)
    return buf.getvalue()


def _mass(d, n=700):
    xs, ys, g = plane_grid(d.plot_range, n)
    p = np.exp(np.asarray(d.log_prob(g), np.float64))
    return float(p.sum() * (xs[1] - xs[0]) * (ys[1] - ys[0]))


def _chi2(d, n=200_000, bins=12):
    """χ² of a histogram of samples against the bin masses integrated from the density; ≈ dof when they agree."""
    x = d.sample(n, seed=1)
    (x0, x1), (y0, y1) = d.plot_range
    h, ex, ey = np.histogram2d(x[:, 0], x[:, 1], bins=bins, range=[[x0, x1], [y0, y1]])
    sub = 12  # integrate each bin on a sub-grid
    expect = np.zeros_like(h)
    for i in range(bins):
        for j in range(bins):
            gx = np.linspace(ex[i], ex[i + 1], sub, endpoint=False) + (ex[i + 1] - ex[i]) / (2 * sub)
            gy = np.linspace(ey[j], ey[j + 1], sub, endpoint=False) + (ey[j + 1] - ey[j]) / (2 * sub)
            G = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
            expect[i, j] = np.exp(np.asarray(d.log_prob(G), np.float64)).mean() * (ex[1] - ex[0]) * (ey[1] - ey[0])
    expect *= n / expect.sum()
    ok = expect > 20
    return float(np.sum((h[ok] - expect[ok]) ** 2 / expect[ok])), int(ok.sum()) - 1


def test_points_mass_one_and_sampler_matches():
    d = points_density(np.random.default_rng(0).normal(size=(40, 2)), 0.2)
    assert abs(_mass(d) - 1.0) < 0.01
    chi2, dof = _chi2(d)
    assert dof > 10 and chi2 < dof + 6 * np.sqrt(2 * dof), (chi2, dof)


def test_text_mass_one_and_sampler_matches_the_pixels():
    """On a raster the bins can be the pixels themselves (4 x 4 blocks): the expected counts are then exact."""
    d = text_density("FLOW")
    assert abs(_mass(d) - 1.0) < 0.01
    img = d.source["raster"][::-1]  # row 0 = lowest y, as in the plane
    (x0, x1), (y0, y1) = d.source["box"]
    H, W = img.shape
    n = 300_000
    x = d.sample(n, seed=1)
    col = np.floor((x[:, 0] - x0) / (x1 - x0) * W).astype(int) // 4
    row = np.floor((x[:, 1] - y0) / (y1 - y0) * H).astype(int) // 4
    counts = np.zeros(((H + 3) // 4, (W + 3) // 4))
    np.add.at(counts, (row, col), 1)
    mass = np.zeros_like(counts)
    np.add.at(mass, (np.arange(H)[:, None] // 4, np.arange(W)[None, :] // 4), img / img.sum())
    expect = n * mass
    ok = expect > 20
    chi2, dof = float(np.sum((counts[ok] - expect[ok]) ** 2 / expect[ok])), int(ok.sum()) - 1
    assert dof > 50 and chi2 < dof + 6 * np.sqrt(2 * dof), (chi2, dof)
    assert counts[~ok].sum() < 0.01 * n  # almost nothing lands where the text has (almost) no ink


def test_raster_entropy_is_exact_and_matches_direct_summation():
    rng = np.random.default_rng(3)
    img = rng.random((20, 30)) ** 3
    img[5:9, :] = 0  # empty rows: zero density, -inf log p
    d = raster_density(img, "r", "random raster")
    P = img / img.sum()
    (x0, x1), (y0, y1) = d.source["box"]
    dx, dy = (x1 - x0) / 30, (y1 - y0) / 20
    direct = -np.sum(P[P > 0] * np.log(P[P > 0] / (dx * dy)))
    assert d.entropy() == pytest.approx(direct, rel=1e-12)
    x = d.sample(200_000, seed=2)
    mc = -np.mean(np.asarray(d.log_prob(x), np.float64))
    assert abs(mc - direct) < 0.01  # the sampler and the log-density agree with the exact value
    assert np.isneginf(np.asarray(d.log_prob(np.array([[x0 - 1.0, 0.0]]))))[0]  # outside the box


def test_points_entropy_estimate_is_close_to_the_log_density_on_fresh_samples():
    d = points_density(np.random.default_rng(0).normal(size=(30, 2)) * 1.5, 0.25)
    fresh = -np.mean(np.asarray(d.log_prob(d.sample(100_000, seed=9)), np.float64))
    assert abs(d.entropy() - fresh) < 0.02


def test_pictures_dark_is_dense_and_invert():
    a = np.full((40, 60), 255, np.uint8)
    a[10:30, 10:20] = 0  # a dark block on the left
    dark = image_density(_png(a))
    light = image_density(_png(a), invert=True)
    (x0, x1), _ = dark.source["box"]
    left, right = np.array([[x0 + 0.25 * (x1 - x0), 0.0]]), np.array([[x0 + 0.8 * (x1 - x0), 0.0]])
    assert float(dark.log_prob(left)[0]) > float(dark.log_prob(right)[0])
    assert float(light.log_prob(right)[0]) > float(light.log_prob(left)[0])
    jpeg = image_density(_png(np.stack([a] * 3, -1), "RGB", "JPEG"))
    assert jpeg.source["raster"].shape == (40, 60)
    big = image_density(_png(np.zeros((900, 300), np.uint8)))
    assert max(big.source["raster"].shape) == 128  # downscaled


@pytest.mark.parametrize("raw, match", [
    (b"not an image at all", "not a picture"),
    (b"GIF89a" + b"\x00" * 100, "not a picture"),
    (_png(np.full((30, 30), 255, np.uint8)), "empty"),  # all white: no mass
    (b"\x89PNG\r\n\x1a\n" + b"0" * (3 * 1024 * 1024), "at most 2 MB"),
])
def test_bad_pictures_are_one_sentence(raw, match):
    with pytest.raises(ValueError, match=match) as e:
        image_density(raw)
    assert str(e.value).endswith(".") and "\n" not in str(e.value) and len(str(e.value)) < 200


def test_a_huge_declared_picture_is_refused_before_decoding():
    im = Image.new("L", (20_000, 20_000), 0)  # declares 400 million pixels
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    with pytest.raises(ValueError, match="million"):
        image_density(buf.getvalue())


def test_text_and_points_refusals():
    for bad, match in (("", "Type some text"), ("   ", "Type some text"), ("x" * (MAX_TEXT + 1), "at most 12")):
        with pytest.raises(ValueError, match=match):
            text_density(bad)
    with pytest.raises(ValueError, match="at least 10 points"):
        points_density(np.zeros((9, 2)), 0.2)
    with pytest.raises(ValueError, match="bandwidth"):
        points_density(np.random.default_rng(0).normal(size=(20, 2)), 5.0)


def test_sources_rebuild_the_same_density():
    for d in (text_density("Hi"), points_density(np.random.default_rng(1).normal(size=(15, 2)), 0.3),
              raster_density(np.eye(8) + 0.1, "r", "r")):
        again = from_source(d.source)
        x = d.sample(500, seed=5)
        np.testing.assert_allclose(np.asarray(again.log_prob(x)), np.asarray(d.log_prob(x)), rtol=1e-6)


def test_measured_limits_summarise_the_records_by_median():
    from flowlab.custom_densities import measured_limits
    rec = dict(benchmark="own_density", budget_s=60.0, diverged=[])
    rows = [dict(rec, source="text:FLOW", method="relative", seed=s, kl=k) for s, k in enumerate((0.9, 1.3, 1.0))]
    rows += [dict(rec, source="picture:smiley", method="self_normalizing", seed=0, kl=1.5),
             dict(rec, source="picture:smiley", method="relative", seed=0, kl=7.0, diverged=["NaN"]),  # not counted
             dict(benchmark="other", source="text:X", method="relative", seed=0, kl=0.1, budget_s=60.0)]
    s = measured_limits(rows)
    assert "in 60 s" in s and "median of 3 seeds" in s and "relative / self-normalizing" in s
    assert "text 'FLOW' 1.00 / –" in s and "a smiley picture – / 1.50" in s and "'X'" not in s
    assert measured_limits([]) is None
