"""flowlab.files against hostile input: crafted model files (bombs, bad members, bad dtypes and values, bad config
JSON) and crafted CSVs.  Every refusal is a ValueError of one sentence; bombs are refused before they unpack."""
import io
import json
import struct
import tracemalloc
import zipfile

import jax
import numpy as np
import pytest
from numpy.lib import format as npy

from flowlab import files as fio
from flowlab import settings
from flowlab.activations import make_activation
from flowlab.flow import FlowSpec, Norm, init_params

MAX_MESSAGE = 300
MAX_PEAK_BYTES = 50 << 20  # what reading a hostile file may allocate at most (the old reader took 400–800 MB)


def one_sentence(e: Exception) -> str:
    msg = str(e)
    assert msg.endswith(".") and "\n" not in msg and len(msg) <= MAX_MESSAGE, msg
    return msg


def refused(source, match: str) -> str:
    with pytest.raises(ValueError, match=match) as e:
        fio.load_model(source)
    return one_sentence(e.value)


# ---- building model files -----------------------------------------------------------------------------------------
def good(L=3, D=2, config=None, with_R=False, act="smooth_leaky_relu") -> bytes:
    spec = FlowSpec(D, L, make_activation(act))
    params = init_params(spec, jax.random.PRNGKey(0), with_R=with_R)
    norm = Norm(np.zeros(D, np.float32), np.ones(D, np.float32))
    return fio.model_bytes(spec, params, norm, config)


def members(raw: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def archive(parts: dict, compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


def npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def header_only(shape, descr: str, body: bytes = b"") -> bytes:
    """An .npy member written by hand: any header numpy's parser accepts, followed by ``body``."""
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue() + body


def with_member(name: str, data: bytes, raw: bytes | None = None) -> bytes:
    parts = members(raw or good())
    parts[name] = data
    return archive(parts)


def with_config(meta, raw: bytes | None = None) -> bytes:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    return with_member("config.npy", npy_bytes(np.asarray(text)), raw)


def declare_size(raw: bytes, name: str, size: int) -> bytes:
    """``raw`` with member ``name``'s declared unpacked size set to ``size`` in its local and central headers."""
    b, nm = bytearray(raw), name.encode()
    for sig, name_at, size_at in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):
        i = b.find(sig)
        while i >= 0:
            if b[i + name_at:i + name_at + len(nm)] == nm:
                b[i + size_at:i + size_at + 4] = struct.pack("<I", size)
            i = b.find(sig, i + 4)
    return bytes(b)


def zeros_member(name: str, header: bytes, unpacked: int, raw: bytes | None = None) -> bytes:
    """A deflated member of ``header`` then ``unpacked`` zero bytes, written in 1 MiB pieces (deflate packs zeros
    about 1000:1, so the archive stays small)."""
    parts = members(raw or good())
    parts.pop(name, None)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for n, data in parts.items():
            zf.writestr(n, data)
        with zf.open(name, "w") as f:
            f.write(header)
            for _ in range(unpacked >> 20):
                f.write(bytes(1 << 20))
    return buf.getvalue()


def peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# ---- the good file still loads -------------------------------------------------------------------------------------
def test_round_trip_of_the_largest_model_within_the_caps():
    """Every member at its largest: R, and A of the learned activation with the most parameters per unit."""
    raw = good(L=fio.MAX_MODEL_LAYERS, D=fio.MAX_MODEL_DIM, with_R=True, act="learned_steps")
    assert len(raw) <= fio.MAX_ARCHIVE_BYTES
    spec, params, norm, meta = fio.load_model(raw)
    assert (spec.layers, spec.dim) == (fio.MAX_MODEL_LAYERS, fio.MAX_MODEL_DIM)
    assert set(params) == {"W", "b", "R", "A"} and spec.activation.n_params == fio.MAX_PARAMS
    with pytest.raises(ValueError, match="at most 256 layers"):
        good(L=fio.MAX_MODEL_LAYERS + 1)
    assert settings.LAYERS.hi <= fio.MAX_MODEL_LAYERS  # every model the Playground or the CLI trains can be read


def test_float64_and_big_endian_arrays_are_read():
    parts = members(good())
    W = np.load(io.BytesIO(parts["W.npy"]))
    raw = with_member("W.npy", npy_bytes(W.astype(">f8")))
    np.testing.assert_array_equal(np.asarray(fio.load_model(raw)[1]["W"]), W)


# ---- bombs and sizes -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def junk_bomb():
    """400 MB of zeros in an unknown member, about 400 KB packed (the issue's probe)."""
    return zeros_member("junk.npy", b"", 400 << 20)


def test_compression_bomb_in_an_unknown_member_is_refused_unread(junk_bomb):
    assert len(junk_bomb) < 1 << 20
    msg = []
    peak = peak_bytes(lambda: msg.append(refused(junk_bomb, "holds 'junk.npy'")))
    assert peak < MAX_PEAK_BYTES, peak
    assert "W, b, R, A, shift, scale, raster, points and config" in msg[0]


def test_compression_bomb_in_a_known_member_is_refused_by_its_declared_size():
    raw = zeros_member("W.npy", header_only((3, 2, 2), "<f4"), 200 << 20)
    msg = []
    assert peak_bytes(lambda: msg.append(refused(raw, "W would unpack to 209,715,"))) < MAX_PEAK_BYTES
    assert f"{fio.MEMBER_BYTES['W']:,}" in msg[0]


def test_member_that_lies_about_its_size_is_cut_at_the_declared_size():
    """zipfile unpacks no more than the declared size (then the CRC check fails): a member packing 200 MB behind a
    small declared size costs only what it declares."""
    head = npy_bytes(np.stack([np.eye(2, dtype=np.float32) * 2] * 3))
    raw = declare_size(zeros_member("W.npy", head, 200 << 20), "W.npy", len(head))
    assert peak_bytes(lambda: refused(raw, "its member W is damaged")) < MAX_PEAK_BYTES


def test_huge_declared_size_is_refused():
    refused(declare_size(good(), "b.npy", 0xFFFF_FFF0), r"b would unpack to 4,294,967,280 bytes")


def test_archive_over_the_cap_is_refused_before_opening(tmp_path):
    raw = good() + bytes(fio.MAX_ARCHIVE_BYTES)
    refused(raw, "largest FlowLab model")
    path = tmp_path / "big.npz"
    path.write_bytes(raw)
    refused(path, "largest FlowLab model")
    refused(io.BytesIO(raw), "largest FlowLab model")


def test_too_many_layers_declared_by_the_header_is_refused_before_the_data():
    """The member holds a header only: reading its data would say 'truncated', the header check speaks first."""
    msg = refused(with_member("W.npy", header_only((20_000, 2, 2), "<f4")), "20,000 layers")
    assert "truncated" not in msg and str(fio.MAX_MODEL_LAYERS) in msg
    refused(with_member("W.npy", header_only((3, 65, 65), "<f4")), "dimension 65")
    refused(with_member("W.npy", header_only((3, 2, 2), "<f4", b"\0" * 8)), "W is truncated")


def test_directory_of_many_members_is_refused_before_zipfile_reads_it():
    """zipfile builds one object per listed member (about 100 MB for the 190,000 that fit under the archive cap):
    the directory's size is checked first."""
    raw = archive({f"{i}.npy": b"" for i in range(20_000)})
    assert len(raw) < fio.MAX_ARCHIVE_BYTES
    assert peak_bytes(lambda: refused(raw, "directory lists far more than the .npy arrays")) < 5 << 20


def test_too_many_members_is_refused():
    parts = members(good())
    parts.update({f"x{i}.npy": b"" for i in range(10)})
    refused(archive(parts), "15 members")


# ---- members ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, match", [
    ("extra.npy", "holds 'extra.npy'"),
    ("W.txt", "holds 'W.txt'"),
    ("dir/W.npy", "holds 'dir/W.npy'"),
    ("payload.pkl", "holds 'payload.pkl'"),
])
def test_unknown_or_non_npy_member_is_refused(name, match):
    refused(with_member(name, b"anything"), match)


def test_member_that_is_not_npy_inside_is_refused():
    refused(with_member("b.npy", b"this is not an npy file at all"), "member b is damaged")
    refused(with_member("W.npy", b"\x93NUMPY\x09\x00" + b"\0" * 20), "version")


def test_missing_member_is_refused():
    parts = members(good())
    del parts["b.npy"]
    refused(archive(parts), "array 'b' is missing")


def test_duplicate_member_is_refused():
    parts = list(members(good()).items())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        for name, data in parts + [parts[0]]:
            zf.writestr(name, data)
    refused(buf.getvalue(), "twice")


def test_encrypted_member_is_refused():
    raw = bytearray(good())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = raw.find(sig)
        while i >= 0:
            raw[i + flag_at] |= 1
            i = raw.find(sig, i + 4)
    refused(bytes(raw), "encrypted")


@pytest.mark.parametrize("raw, match", [
    (b"", "Not a FlowLab model file"),
    (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "Not a FlowLab model file"),
    (b"PK\x03\x04" + bytes(200), "Not a FlowLab model file"),
], ids=["empty", "random", "zip-magic-then-zeros"])
def test_random_bytes_are_refused(raw, match):
    refused(raw, match)


def test_truncated_archives_are_refused():
    raw = good()
    for cut in (len(raw) // 4, len(raw) // 2, len(raw) - 30):
        refused(raw[:cut], "Not a FlowLab model file")


def test_bad_sources_are_refused(tmp_path):
    refused(tmp_path / "no_such.npz", "Cannot read the model file")
    refused(io.StringIO("text"), "binary")
    refused(12, "path, bytes or a binary file")


# ---- dtypes ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("member", [
    npy_bytes(np.full((3, 2, 2), "abc")),
    header_only((3, 2, 2), "|O", b"\x80\x04cos\nsystem\n."),  # object: pickled data behind the header
    npy_bytes(np.ones((3, 2, 2), np.complex64)),
    npy_bytes(np.ones((3, 2, 2), [("a", "<f4"), ("b", "<f4")])),
    npy_bytes(np.ones((3, 2, 2), "datetime64[s]")),
    npy_bytes(np.ones((3, 2, 2), np.int32)),
    npy_bytes(np.ones((3, 2, 2), np.bool_)),
    header_only((3, 2, 2), "<f16", bytes(16 * 12)),  # long double
    header_only((3, 2, 2), [("x", "<f4", (2,))], bytes(8 * 12)),
], ids=["str", "object", "complex", "structured", "datetime", "int", "bool", "longdouble", "subarray"])
def test_every_non_float_dtype_is_refused(member):
    msg = refused(with_member("W.npy", member), "real floats")
    assert "float16, float32 or float64" in msg


def test_bad_shapes_are_refused():
    W = np.load(io.BytesIO(members(good())["W.npy"]))
    refused(with_member("W.npy", npy_bytes(W[:, :, :1])), r"W must have shape \(L, D, D\)")
    refused(with_member("W.npy", npy_bytes(W[0])), "3 axes")
    refused(with_member("b.npy", npy_bytes(np.zeros((2, 2), np.float32))), r"b must have shape \(3, 2\)")
    refused(with_member("scale.npy", npy_bytes(np.ones(3, np.float32))), r"scale must have shape \(2,\)")
    refused(with_member("R.npy", npy_bytes(np.ones((3, 3, 3), np.float32))), "R must have shape")
    refused(with_member("W.npy", header_only((3, -2, 2), "<f4")), "negative shape")
    refused(with_member("W.npy", header_only((0, 2, 2), "<f4")), r"shape \(L, D, D\)")


# ---- values ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, match", [
    (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"), (-np.inf, "NaN or infinite"),
    (1e300, "beyond float32's range"), (-4e38, "beyond float32's range"),
])
def test_non_finite_or_float32_overflowing_weights_are_refused(bad, match):
    for name in ("W", "b"):
        a = np.load(io.BytesIO(members(good())[f"{name}.npy"])).astype(np.float64)
        a.flat[1] = bad
        refused(with_member(f"{name}.npy", npy_bytes(a)), f"{name} holds .*{match}")


@pytest.mark.parametrize("scale, match", [
    ([np.nan, 1.0], "scale holds NaN"), ([1.0, 0.0], "scale must be positive"), ([-1.0, 1.0], "scale must be positive"),
    ([1e-50, 1.0], "scale must be positive"),  # zero in float32
])
def test_bad_scale_is_refused(scale, match):
    refused(with_member("scale.npy", npy_bytes(np.asarray(scale))), match)


def test_bad_shift_and_half_a_standardisation_are_refused():
    refused(with_member("shift.npy", npy_bytes(np.asarray([np.inf, 0.0]))), "shift holds NaN or infinite")
    parts = members(good())
    del parts["shift.npy"]
    refused(archive(parts), "both 'shift' and 'scale'")


@pytest.mark.parametrize("W1", [
    np.zeros((2, 2)),  # singular
    np.array([[1.0, 2.0], [2.0, 4.0]]),  # rank 1
    np.array([[1.0, 0.0], [0.0, 1e-9]]),  # condition number 1e9
    np.eye(2) * 1e-20,  # log|det| = -92 for D = 2
])
def test_singular_weights_are_refused(W1):
    W = np.load(io.BytesIO(members(good())["W.npy"]))
    W[1] = W1
    refused(with_member("W.npy", npy_bytes(W)), "W_2 is singular or nearly so")


# ---- learned activation parameters A ---------------------------------------------------------------------------
def learned(L=3, D=2) -> bytes:
    return good(L=L, D=D, act="learned_steps")


def test_activation_parameters_must_match_the_activation():
    parts = members(learned())
    del parts["A.npy"]
    refused(archive(parts), "learned_steps is learned, but its parameters \\(array 'A'\\) are missing")
    A = np.load(io.BytesIO(members(learned())["A.npy"]))
    refused(with_member("A.npy", npy_bytes(A)), "holds activation parameters A, but its activation smooth_leaky_relu "
                                                 "has none")


def test_activation_parameter_shape_is_checked_against_W_before_the_data():
    raw = learned()
    refused(with_member("A.npy", header_only((3, 2, 10), "<f4"), raw), r"A must have shape \(2, 2, 10\) to match W")
    refused(with_member("A.npy", header_only((2, 2, 9), "<f4"), raw), r"A must have shape \(2, 2, 10\)")
    refused(with_member("A.npy", header_only((2, 20), "<f4"), raw), "A must have 3 axes")
    refused(with_member("A.npy", header_only((2, 2, 10), "<i4", bytes(160)), raw), "A holds .*real floats")
    refused(with_member("A.npy", header_only((2, 2, 10), "<f4", bytes(8)), raw), "A is truncated")


@pytest.mark.parametrize("bad, match", [
    (np.nan, "A holds NaN or infinite"), (np.inf, "A holds NaN or infinite"), (1e39, "beyond float32's range"),
    (51.0, "beyond ±50"), (-1e6, "beyond ±50"),
])
def test_bad_activation_parameter_values_are_refused(bad, match):
    raw = learned()
    A = np.load(io.BytesIO(members(raw)["A.npy"])).astype(np.float64)
    A.flat[3] = bad
    refused(with_member("A.npy", npy_bytes(A), raw), match)


def test_activation_parameter_bomb_is_refused_by_its_declared_size():
    raw = zeros_member("A.npy", header_only((2, 2, 10), "<f4"), 100 << 20, learned())
    msg = []
    assert peak_bytes(lambda: msg.append(refused(raw, "A would unpack to"))) < MAX_PEAK_BYTES
    assert f"{fio.MEMBER_BYTES['A']:,}" in msg[0]


# ---- config JSON ----------------------------------------------------------------------------------------------------
def _meta(**over):
    meta = {"format": fio.FORMAT, "version": 1, "activation": {"name": "smooth_leaky_relu", "alpha": 0.3, "beta": 0.1}}
    meta.update(over)
    return meta


@pytest.mark.parametrize("config, match", [
    ("[1, 2]", "must be a JSON object, got a list"),
    ("null", "must be a JSON object, got null"),
    ('"flowlab-model"', "must be a JSON object, got a string"),
    ("[" * 1000 + "]" * 1000, "nested more than 8 levels|must be a JSON object"),
    ('{"format": "flowlab-model", "a": ' + "[" * 1000 + "]" * 1000 + "}", "nested more than 8 levels"),
    ('{"format": "flowlab-model", "a": ' + '{"b": ' * 9 + "1" + "}" * 9 + "}", "nested more than 8 levels"),
    ("{not json", "config is not valid JSON at character 1"),
    ('{"format": "flowlab-model", "n": ' + "9" * 5000 + "}", "config is not valid JSON"),
    (_meta(format="[x](http://evil)" * 20), "format is '\\[x\\]"),
    (_meta(version=3), "format version 3; this FlowLab reads versions 1 to 2"),
    (_meta(version="1"), "format version '1'"),
    (_meta(activation="relu"), "activation must be a JSON object"),
    (_meta(activation={"name": "relu"}), "activation 'relu'"),
    (_meta(activation={"name": ["smooth_leaky_relu"]}), "activation \\['smooth_leaky_relu'\\]"),
    (_meta(activation={"name": "smooth_leaky_relu", "alpha": float("nan")}), "alpha must be a finite number"),
    (_meta(activation={"name": "tanh_linear", "beta": float("inf")}), "beta must be a finite number"),
    (_meta(activation={"name": "tanh_linear", "alpha": 1e300}), "alpha must be a finite number"),
    (_meta(activation={"name": "smooth_leaky_relu", "alpha": "0.3"}), "alpha must be a finite number"),
    (_meta(activation={"name": "smooth_leaky_relu", "alpha": True}), "alpha must be a finite number"),
    (_meta(activation={"name": "smooth_leaky_relu", "alpha": 1.5}), "0 < alpha < 1"),
    (_meta(activation={"name": "tanh_linear", "beta": -1}), "beta > 0"),
    (_meta(density=["moons"]), "density must be a density name, got a list"),
    (_meta(method={"x": 1}), "method must be a method name, got an object"),
    (_meta(steps=float("inf")), "steps must be a count"),
    (_meta(steps=-5), "steps must be a count"),
    (_meta(steps="400"), "steps must be a count"),
    (_meta(dim=3), "says dim=3"),
    (_meta(layers="3"), "says layers='3'"),
], ids=lambda v: str(v)[:40])
def test_bad_config_is_refused(config, match):
    refused(with_config(config), match)


def test_huge_config_string_is_refused_by_its_size():
    big = json.dumps(_meta(method="x" * (10 << 20)))
    parts = members(good())
    buf = io.BytesIO()
    np.save(buf, np.asarray(big))
    parts["config.npy"] = buf.getvalue()
    raw = archive(parts, zipfile.ZIP_DEFLATED)
    assert len(raw) < fio.MAX_ARCHIVE_BYTES  # small packed, 40 MB unpacked (UTF-32)
    assert peak_bytes(lambda: refused(raw, "config would unpack to")) < MAX_PEAK_BYTES
    refused(with_member("config.npy", header_only((), "<U100000")), "100,000 characters")
    refused(with_member("config.npy", npy_bytes(np.asarray([b"{}"]))), "0-d string array")


def test_markdown_in_config_strings_loads_as_plain_data():
    """Strings are data: a method name with a markdown link loads (the Layers page shows it literally)."""
    link = "[click](http://evil.example) ![beacon](http://evil.example/x.png)"
    meta = fio.load_model(good(config={"method": link}))[3]
    assert meta["method"] == link


# ---- CSV ------------------------------------------------------------------------------------------------------
def csv_refused(text, match: str) -> str:
    with pytest.raises(ValueError, match=match) as e:
        fio.parse_points_csv(text)
    return one_sentence(e.value)


def _points(n=200, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 2))


def _csv(pts) -> str:
    return "x,y\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in pts)


def test_csv_value_beyond_float32_names_line_and_column():
    rows = _csv(_points()).splitlines()
    rows[5] = rows[5].split(",")[0] + ",1e39"
    csv_refused("\n".join(rows), r"Line 6, column 2 holds '1e39', beyond float32's range \(±3.4e38\)")


def test_csv_outlier_dominating_the_standardisation_is_named():
    pts = _points()
    pts[9, 0] = 1e30
    msg = csv_refused(_csv(pts), r"Line 11 holds x = 1e\+30, .* typical deviations")
    assert "dominates the standardisation" in msg
    pts[9, 0] = 1e300
    csv_refused(_csv(pts), "Line 11, column 1 holds '1e[+]?300', beyond float32's range")
    ok = _points(2000)
    ok[:, 0] = np.random.default_rng(1).standard_cauchy(2000)  # heavy tails are data, not outliers
    assert fio.parse_points_csv(_csv(ok)).shape == (2000, 2)


def test_csv_half_equal_values_with_one_far_point():
    pts = _points(100)
    pts[:60, 0] = 0.0
    pts[7, 0] = 1e25  # MAD is 0: the MAD of the points off the median is the yardstick
    csv_refused(_csv(pts), "Line 9 holds x = 1e\\+25")


@pytest.mark.parametrize("scale, match", [(1e-45, "share \\(nearly\\) the same x"), (1e-8, "the same x"),
                                           (0.0, "the same x")])
def test_csv_spread_too_small(scale, match):
    pts = _points()
    pts[:, 0] = 5.0 + pts[:, 0] * scale if scale > 1e-20 else pts[:, 0] * scale
    csv_refused(_csv(pts), match)


def test_csv_spread_small_relative_to_its_size():
    pts = _points()
    pts[:, 1] = 1e6 + pts[:, 1] * 1e-3  # float32 cannot tell these apart
    csv_refused(_csv(pts), "the same y")


def test_csv_few_distinct_points():
    pts = np.array([[0.0, 1.0], [1.0, 0.0]] * 50)
    csv_refused(_csv(pts), "Only 2 of the points are distinct")
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]] * 3 + [[1.0, 1.0]] * 5)
    csv_refused(_csv(pts), "Only 4 of the points are distinct")


@pytest.mark.parametrize("noise", [0.0, 1e-6])
def test_csv_collinear_points(noise):
    t = np.linspace(-3, 3, 200)
    pts = np.c_[t, 2 * t + 1 + noise * np.random.default_rng(0).normal(size=200)]
    msg = csv_refused(_csv(pts), "The points lie on a line")
    assert msg == "The points lie on a line; a 2-D density needs them to spread in two directions."
    pts = np.c_[t, 2 * t + 1 + 0.05 * np.random.default_rng(0).normal(size=200)]  # a thin band is fine
    assert fio.parse_points_csv(_csv(pts)).shape == (200, 2)


def test_csv_span_overflowing_float32_when_standardised():
    pts = np.r_[np.full((75, 1), -3e38), np.full((25, 1), 3e38)] * [1, 0] + _points(100)
    csv_refused(_csv(pts), "overflows float32")


def test_csv_huge_cell_is_echoed_short():
    big = "1" * 2_000_000
    csv_refused(("x,y\n" + "1,2\n" * 12 + f"{big},3\n"), "Line 14, column 1 holds '1111")
    csv_refused(("x,y\n" + "1,2\n" * 12 + "a" * 2_000_000 + ",3\n"), "Line 14, column 1: 'aaaa.*' is not a number")
    csv_refused("x,y\n" + "1,2\n" * 12 + ("1," * 1_000_000) + "\n", "Line 14 has 1,000,001 columns")


@pytest.mark.parametrize("junk", ["\x00\x00", "١٢\u202e3", "💥", "NaN\x00", "1e5\ufeff", "—"])
def test_csv_unicode_junk_and_nul_bytes(junk):
    text = "x,y\n" + "\n".join(f"{a},{b}" for a, b in _points(20)) + f"\n{junk},1\n"
    with pytest.raises(ValueError, match="Line 22, column 1") as e:
        fio.parse_points_csv(text.encode())
    assert "\x00" not in one_sentence(e.value)


def test_csv_only_a_header_and_the_row_limit():
    csv_refused("x,y\n", "header but no data")
    csv_refused(b"\xef\xbb\xbfx,y\n", "header but no data")
    rows = "\n".join(f"{i},{(i * i) % 101}" for i in range(fio.MAX_CSV_ROWS + 1))
    csv_refused(rows, "100,001 data rows; the limit is 100,000")


def test_check_points_names_points_without_lines():
    with pytest.raises(ValueError, match="Point 3 holds y") as e:
        fio.check_points(np.c_[_points(50)[:, 0], np.r_[0.0, 1.0, 1e20, np.zeros(47)] + _points(50, 1)[:, 1]])
    one_sentence(e.value)
