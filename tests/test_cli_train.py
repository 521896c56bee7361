import io
import json

import numpy as np
import pytest
from PIL import Image

from flowlab import presets
from flowlab.cli import main
from flowlab.cli.train import build_parser, density_from_args, settings_from_args
from flowlab.densities import REGISTRY as DENSITIES
from flowlab.gradients import TRAIN_METHODS
from flowlab.files import load_model


def test_densities_lists_the_registry(capsys):
    assert main(["densities"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("trimodal") and "[paper]" in out and "spirals" in out


def test_train_writes_model_metrics_and_figure(tmp_path, capsys):
    rc = main(["train", "--density", "trimodal", "--steps", "60", "--layers", "3", "--batch", "32",
               "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    spec, params, norm, cfg = load_model(tmp_path / "model.npz")
    assert spec.layers == 3 and params["W"].shape == (3, 2, 2) and norm is not None
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["steps"] >= 60 and np.isfinite(summary["kl"]) and summary["settings"]["layers"] == 3
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",")[0] == "step" and "loss" in rows[0].split(",") and len(rows) == summary["steps"] + 1
    assert (tmp_path / "density.html").stat().st_size > 1000
    assert "trimodal:" in capsys.readouterr().out


def test_train_paper_preset_and_bad_input(tmp_path, capsys):
    assert main(["train", "--density", "sine", "--preset", "paper", "--layers", "2", "--steps", "20",
                 "--out", str(tmp_path), "--quiet"]) == 0
    cfg = json.loads((tmp_path / "metrics.json").read_text())["settings"]
    assert cfg["lr"] == 5e-3 and cfg["batch"] == 100 and cfg["standardize"] is False and cfg["b2"] == 0.999
    assert main(["train", "--density", "moons", "--layers", "2", "--steps", "20", "--b2", "0.95", "--out",
                 str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["settings"]["b2"] == 0.95
    _, _, _, saved = load_model(tmp_path / "model.npz")
    assert abs(saved["hyper"]["b2"] - 0.95) < 1e-6  # the model file records the β₂ it was trained with
    assert main(["train", "--density", "unicorn", "--steps", "5", "--out", str(tmp_path)]) == 2
    assert "unicorn" in capsys.readouterr().err
    assert main(["train", "--density", "moons", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "--steps must be a positive integer" in capsys.readouterr().err
    assert main(["train", "--density", "moons", "--steps", "5", "--b2", "1", "--out", str(tmp_path)]) == 2
    assert "--b2: Adam's β₂ must be between 0.5 and 0.9999" in capsys.readouterr().err


def test_train_candidates_saves_the_lowest_held_out_nll(tmp_path, capsys):
    rc = main(["train", "--density", "moons", "--steps", "100", "--layers", "3", "--batch", "32",
               "--candidates", "2", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("candidate seed")]
    assert [ln.split(":")[0] for ln in lines] == ["candidate seed 0", "candidate seed 1"]
    nlls = [float(ln.split("held-out NLL ")[1].split()[0]) for ln in lines]
    saved = [ln for ln in lines if ln.endswith("<- saved")]
    assert len(saved) == 1 and float(saved[0].split("held-out NLL ")[1].split()[0]) == min(nlls)
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["candidates"] == 2 and summary["seed"] == int(saved[0].split(":")[0].split()[-1])
    assert abs(summary["test_nll"] - min(nlls)) < 1e-4
    assert main(["train", "--density", "moons", "--steps", "5", "--candidates", "0", "--out", str(tmp_path)]) == 2
    assert "--candidates must be a positive integer" in capsys.readouterr().err


def test_keep_last_saves_the_last_weights(tmp_path):
    assert main(["train", "--density", "moons", "--steps", "60", "--layers", "2", "--batch", "16",
                 "--keep-last", "--out", str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["kept_step"] == summary["steps"] and summary["test_nll"] == summary["evals"]["test_nll"][-1]


def test_bad_arguments_are_one_line_and_create_nothing(tmp_path, capsys):
    target = tmp_path / "not_yet"
    for argv in (["--lr", "abc"], ["--layers", "0"], ["--method", "magic"], ["--budget", "-1"]):
        assert main(["train", "--density", "moons", "--steps", "5", *argv, "--out", str(target)] if "--budget"
                    not in argv else ["train", "--density", "moons", *argv, "--out", str(target)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    assert not target.exists()
    afile = tmp_path / "a_file"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        assert main(["train", "--density", "moons", "--steps", "5", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is a file, not a folder" in err[0]


def test_steps_end_the_cosine_decay_with_the_run(tmp_path):
    assert main(["train", "--density", "moons", "--steps", "40", "--layers", "2", "--batch", "16",
                 "--out", str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["settings"]["decay"] == 40
    lr = [float(r.split(",")[3]) for r in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert lr[-1] < 0.1 * max(lr)  # decayed to (near) its floor by the last step, not at the peak


def test_train_on_typed_text_and_on_a_picture(tmp_path, capsys):
    assert main(["train", "--text", "Hi", "--steps", "50", "--layers", "3", "--out", str(tmp_path / "t"),
                 "--quiet"]) == 0
    summary = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert summary["density"] == "text" and summary["label"] == "Text: Hi" and np.isfinite(summary["kl"])
    assert summary["kl"] >= -0.05  # KL against the exact raster density (small negative only by sampling noise)
    png = (tmp_path / "t" / "density.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(io.BytesIO(png)).size[0] >= 100
    im = Image.new("L", (40, 30), 255)
    im.paste(0, (5, 5, 20, 25))  # a dark square on white
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    (tmp_path / "sq.png").write_bytes(buf.getvalue())
    assert main(["train", "--image", str(tmp_path / "sq.png"), "--steps", "50", "--layers", "3",
                 "--out", str(tmp_path / "i"), "--quiet"]) == 0
    assert json.loads((tmp_path / "i" / "metrics.json").read_text())["density"] == "image"
    assert "Your picture" in capsys.readouterr().out
    # each model file carries the density it learned, so the Layers page can draw that picture's points
    from flowlab.files import load_model
    from flowlab.layerviz import model_from_file
    for sub, kind in (("t", "text"), ("i", "image")):
        raw = (tmp_path / sub / "model.npz").read_bytes()
        assert load_model(raw)[3]["density_source"]["kind"] == kind
        m = model_from_file(raw, n_points=200)
        assert m.data.shape == (200, 2) and m.label_noun == "part"
    inside = m.data[:, 0] < 0  # the dark square sits in the left half of the picture (box spans [-3, 3])
    assert inside.mean() > 0.95


@pytest.mark.parametrize("argv,match", [
    (["--text", ""], "Type some text"),
    (["--text", "x" * 13], "at most 12"),
    (["--image", "/nonexistent/pic.png"], "no such file"),
    (["--density", "moons", "--invert"], "--invert applies to --image only"),
    (["--text", "Hi", "--preset", "paper"], "only for"),
])
def test_bad_text_and_image_arguments_are_one_sentence(tmp_path, capsys, argv, match):
    assert main(["train", *argv, "--steps", "5", "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err and not (tmp_path / "o").exists()


def test_a_file_that_is_not_a_picture_is_one_sentence(tmp_path, capsys):
    (tmp_path / "fake.png").write_bytes(b"not a picture at all")
    assert main(["train", "--image", str(tmp_path / "fake.png"), "--steps", "5", "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert "not a picture" in err and "fake.png" in err and "\n" not in err


def test_a_run_over_the_memory_budget_is_refused_before_anything_is_created(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "10")
    assert main(["train", "--density", "moons", "--layers", "200", "--batch", "4096", "--steps", "5",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "This run needs about" in err and "FLOWLAB_SESSION_MEMORY_MB allows 10 MB" in err and "\n" not in err
    assert "use at most batch" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [["train", "--help"], ["bench", "--help"], ["figure", "--help"],
                                  ["figure", "convergence", "--help"], ["figure", "movie", "--help"]])
def test_every_help_prints_and_exits_zero(argv, capsys):
    """argparse formats help strings with %: a schema help such as "5% of its peak" must not crash --help."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    assert code in (0, None) and "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("method", TRAIN_METHODS)
@pytest.mark.parametrize("density", list(DENSITIES))
def test_every_density_and_method_gets_its_tuned_preset(density, method):
    """No training: the settings ``train`` would use are the tuned preset of that pair, and a setting given by name
    replaces the preset's."""
    args = build_parser().parse_args(["--density", density, "--method", method, "--budget", "60", "--out", "x"])
    s, seed = settings_from_args(args, density_from_args(args))
    assert s == presets.tuned(density, method).settings() and seed == presets.PLAYGROUND_EXTRA["seed"]
    args = build_parser().parse_args(["--density", density, "--method", method, "--batch", "64", "--budget", "9", "--out", "x"])
    assert settings_from_args(args, density_from_args(args))[0]["batch"] == 64
