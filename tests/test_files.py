"""flowlab.files: model files round trip, uploaded-CSV validation, curves CSV."""
import io
import json
import zipfile

import jax
import numpy as np
import pytest

from flowlab import files as fio
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec, Norm, init_params, log_prob


# ---- model files ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_R", [False, True])
def test_model_round_trip_preserves_log_prob(tmp_path, with_R):
    spec = FlowSpec(2, 3, make_activation("tanh_linear", 0.8, 0.2))
    params = init_params(spec, jax.random.PRNGKey(3), with_R=with_R)
    params["b"] = params["b"] + 0.3
    norm = Norm(np.array([0.5, -1.0], np.float32), np.array([2.0, 0.5], np.float32))
    path = fio.save_model(tmp_path / "m.npz", spec, params, norm, {"method": "relative"})
    spec2, params2, norm2, meta = fio.load_model(path)
    assert spec2 == spec and set(params2) == set(params) and meta["method"] == "relative"
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    np.testing.assert_allclose(log_prob(spec2, params2, x, norm2), log_prob(spec, params, x, norm), rtol=1e-6)
    # bytes in, same model out
    spec3, params3, _, _ = fio.load_model(fio.model_bytes(spec, params, norm))
    np.testing.assert_array_equal(params3["W"], params["W"])


@pytest.mark.parametrize("act", ["learned_leaky_relu", "learned_steps"])
def test_learned_activation_round_trip(act):
    spec = FlowSpec(2, 4, make_activation(act))
    params = init_params(spec, jax.random.PRNGKey(1), with_R=True)
    params["A"] = params["A"] + 0.4 * jax.random.normal(jax.random.PRNGKey(2), params["A"].shape)
    spec2, params2, norm2, meta = fio.load_model(fio.model_bytes(spec, params, None, {"method": "self_normalizing"}))
    assert spec2 == spec and set(params2) == {"W", "b", "R", "A"} and norm2 is None and meta["version"] == fio.VERSION
    np.testing.assert_array_equal(params2["A"], params["A"])
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    np.testing.assert_allclose(log_prob(spec2, params2, x), log_prob(spec, params, x), rtol=1e-6)
    params["A"] = params["A"].at[0, 0, 0].set(60.0)
    with pytest.raises(ValueError, match="within ±50 to be saved"):
        fio.model_bytes(spec, params)


def test_version_1_files_have_their_lambda_halved():
    """Version 1 stored FlowLab's former λ, twice Keller et al.'s; loading gives the config on today's scale."""
    spec = FlowSpec(2, 3)
    raw = fio.model_bytes(spec, init_params(spec, jax.random.PRNGKey(0)), None,
                          {"hyper": {"lam": 10.0, "lr": 0.01}, "method": "self_normalizing"})
    assert fio.load_model(raw)[3]["hyper"] == {"lam": 10.0, "lr": 0.01}  # the current version: as written
    buf_in, buf_out = io.BytesIO(raw), io.BytesIO()
    with zipfile.ZipFile(buf_in) as zin, zipfile.ZipFile(buf_out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.npy":
                meta = json.loads(str(np.load(io.BytesIO(data))[()]))
                meta["version"] = 1
                b = io.BytesIO()
                np.save(b, np.asarray(json.dumps(meta)))
                data = b.getvalue()
            zout.writestr(info.filename, data)
    meta = fio.load_model(buf_out.getvalue())[3]
    assert meta["hyper"] == {"lam": 5.0, "lr": 0.01} and meta["version"] == fio.VERSION and meta["upgraded_from"] == 1


def _own_densities():
    from flowlab import custom_densities as C
    img = np.zeros((20, 30))
    img[5:15, 8:20] = 1.0
    pts = np.random.default_rng(4).normal(size=(40, 2))
    return {"text": C.text_density("Hi"), "raster": C.raster_density(img, "img", "Picture"),
            "points": C.points_density(pts, 0.2)}


@pytest.mark.parametrize("kind", ["text", "raster", "points"])
def test_a_user_density_is_saved_with_the_model_and_rebuilt_exactly(kind):
    d = _own_densities()[kind]
    spec = FlowSpec(2, 3, make_activation())
    params = init_params(spec, jax.random.PRNGKey(0))
    spec2, _, _, meta = fio.load_model(fio.model_bytes(spec, params, None, {"density": d.name}, d))
    assert meta["density_source"]["kind"] == d.source["kind"]
    d2 = fio.saved_density(meta)
    x = d.sample(500, seed=1).astype(np.float32)
    np.testing.assert_allclose(np.asarray(d2.log_prob(x)), np.asarray(d.log_prob(x)), rtol=1e-5)
    assert d2.entropy() == pytest.approx(d.entropy(), abs=0.05 if kind == "points" else 1e-5)  # points: Monte Carlo


def test_a_toy_model_has_no_saved_density():
    spec = FlowSpec(2, 2, make_activation())
    _, _, _, meta = fio.load_model(fio.model_bytes(spec, init_params(spec, jax.random.PRNGKey(0)), None,
                                                   {"density": "moons"}, None))
    assert "density_source" not in meta and fio.saved_density(meta) is None


def _with_source(source, **arrays):
    spec = FlowSpec(2, 2, make_activation())
    params = init_params(spec, jax.random.PRNGKey(0))
    buf = io.BytesIO()
    cfg = {"format": fio.FORMAT, "version": fio.VERSION, "activation": {"name": "smooth_leaky_relu", "alpha": 0.3,
                                                                        "beta": 0.1}}
    if source is not None:
        cfg["density_source"] = source
    np.savez(buf, config=np.asarray(json.dumps(cfg)), W=np.asarray(params["W"]), b=np.asarray(params["b"]), **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("source, arrays, match", [
    (None, {"raster": np.ones((4, 4), np.float32)}, "no density_source"),
    ({"kind": "svg"}, {}, "must name a kind"),
    ({"kind": "raster", "box": [[0, 1], [0, 1]]}, {}, "needs the array 'raster'"),
    ({"kind": "raster", "box": [[1, 0], [0, 1]]}, {"raster": np.ones((4, 4), np.float32)}, "box must be"),
    ({"kind": "points"}, {"points": np.zeros((20, 2), np.float32)}, "needs a bandwidth"),
    ({"kind": "raster", "box": [[0, 1], [0, 1]]}, {"raster": np.ones((300, 300), np.float32)}, "pixels per side"),
])
def test_a_bad_saved_density_is_one_sentence(source, arrays, match):
    with pytest.raises(fio.ModelFileError, match=match):
        fio.load_model(_with_source(source, **arrays))


@pytest.mark.parametrize("source, arrays, match", [
    ({"kind": "raster", "box": [[0, 1], [0, 1]]}, {"raster": -np.ones((4, 4), np.float32)}, "non-negative"),
    ({"kind": "points", "bandwidth": 9.0}, {"points": np.zeros((20, 2), np.float32)}, "bandwidth must be"),
])
def test_a_saved_density_that_cannot_be_rebuilt_is_one_sentence(source, arrays, match):
    _, _, _, meta = fio.load_model(_with_source(source, **arrays))
    with pytest.raises(fio.ModelFileError, match="could not be rebuilt.*" + match):
        fio.saved_density(meta)


def test_load_model_rejects_garbage():
    with pytest.raises(ValueError, match="Not a FlowLab model file"):
        fio.load_model(b"this is not a zip archive")


# ---- CSV of points ----------------------------------------------------------------------------------------------
def _csv(rows, header="x,y"):
    return ((header + "\n") if header else "") + "\n".join(",".join(str(v) for v in r) for r in rows)


def test_csv_good_with_and_without_header():
    pts = np.random.default_rng(1).normal(size=(25, 2))
    a = fio.parse_points_csv(_csv(pts).encode())
    b = fio.parse_points_csv(_csv(pts, header=None))
    np.testing.assert_allclose(a, pts)
    np.testing.assert_allclose(b, pts)
    c = fio.parse_points_csv("\n".join(f"{x};{y}" for x, y in pts))  # semicolons
    np.testing.assert_allclose(c, pts)
    d = fio.parse_points_csv("\n".join(f"{x} {y}" for x, y in pts))  # whitespace
    np.testing.assert_allclose(d, pts)


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("\n\n  \n", "empty"),
    ("x,y\n", "header but no data"),
    ("x,y,z\n1,2,3\n", "header .* 3 columns"),
    ("x,y\n" + "1,2\n" * 5 + "1,2,3\n" + "1,2\n" * 10, "Line 7 has 3 columns"),
    ("x,y\n" + "1,2\n" * 12 + "3,abc\n", r"Line 14, column 2: 'abc' is not a number"),
    ("x,y\n" + "1,2\n" * 12 + "nan,1\n", r"Line 14, column 1 .*NaN"),
    ("x,y\n" + "1,2\n" * 12 + "4,inf\n", r"Line 14, column 2 .*infinite"),
    ("x,y\n" + "1,2\n" * 3, "only 3 data rows"),
    ("x,y\n" + "\n".join(f"1,{i}" for i in range(20)), r"share \(nearly\) the same x"),
    ("x,y\n" + "\n".join(f"{i},{2 * i + 1}" for i in range(20)), "lie on a line"),
])
def test_csv_bad_inputs_have_precise_messages(text, match):
    with pytest.raises(ValueError, match=match):
        fio.parse_points_csv(text)


def test_csv_row_limit():
    rows = "\n".join(f"{i},{(i * i) % 17}" for i in range(101))
    assert fio.parse_points_csv(rows, max_rows=101).shape == (101, 2)
    with pytest.raises(ValueError, match="101 data rows; the limit is 100"):
        fio.parse_points_csv(rows, max_rows=100)


def test_csv_default_limit_is_100k():
    ok = "\n".join(f"{i},{i % 7}" for i in range(100_000))
    assert fio.parse_points_csv(ok).shape == (100_000, 2)
    with pytest.raises(ValueError, match="100,001 data rows; the limit is 100,000"):
        fio.parse_points_csv(ok + "\n1,2")


def test_csv_binary_is_rejected():
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        fio.parse_points_csv(b"\xff\xfe\x00\x81garbage")


# ---- curves CSV -------------------------------------------------------------------------------------------------
def test_curves_csv_rows_and_eval_columns():
    history = {"loss": [3.0, 2.5, 2.0, 1.5], "lr": [1e-3] * 4, "step": [1, 2, 3, 4]}
    evals = {"step": [2, 4], "time": [0.1, 0.2], "test_nll": [2.4, 1.6], "kl": [0.5, float("nan")]}
    text = fio.curves_csv(history, evals)
    rows = [r.split(",") for r in text.strip().splitlines()]
    assert rows[0] == ["step", "loss", "lr", "test_nll", "kl"]
    assert len(rows) == 5
    assert rows[2] == ["2", "2.5", "0.001", "2.4", "0.5"]
    assert rows[1][3:] == ["", ""]  # no evaluation at step 1
    assert rows[4][3:] == ["1.6", ""]  # NaN KL written as empty
