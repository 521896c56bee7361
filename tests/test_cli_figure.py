"""flowlab.cli.figure (``python -m flowlab figure``) on tiny sizes: both figures, the schema's option names, and
every bad argument as one line on stderr with exit status 2 and nothing created."""
import json
import os

import pytest

from flowlab.__main__ import main as flowlab_main
from flowlab.cli import figure as F
from flowlab.settings import COMPARE

TINY = ["--inits", "3", "--points", "40", "--iters", "3", "--quiet"]


def test_cli_convergence_tiny(tmp_path, capsys):
    out = os.path.join(tmp_path, "fig")
    rc = F.main(["convergence", *TINY, "--rates", "0.01,0.04", "--out", out])
    assert rc == 0
    assert os.path.getsize(out + ".html") > 1000 and os.path.getsize(out + "_rates.html") > 1000
    with open(out + ".csv") as f:
        assert f.readline().startswith("# FlowLab convergence")
    printed = capsys.readouterr().out
    assert '"method": "relative"' in printed and "wrote" in printed
    rows = [json.loads(ln) for ln in printed.splitlines() if ln.startswith('{"sweep"')]
    assert {(r["sweep"], r["lr"]) for r in rows} == {(m, lr) for m in ("inverse", "relative", "self_normalizing")
                                                       for lr in (0.01, 0.02, 0.04)}  # rates ∪ the shared --lr
    said = [ln for ln in printed.splitlines() if ln.startswith("conclusion: ")]
    assert len(said) == 1 and "each method at its best learning rate of those tried" in said[0]
    assert "Time per iteration measured here" in said[0]


def test_cli_shared_view_draws_every_method_at_the_shared_rate(tmp_path, capsys):
    out = os.path.join(tmp_path, "fig")
    assert F.main(["convergence", *TINY, "--rates", "0.01", "--lr", "0.03", "--curves", "shared", "--out", out]) == 0
    printed = capsys.readouterr().out
    summary = [json.loads(ln) for ln in printed.splitlines() if ln.startswith('{"method"')]
    assert [r["lr"] for r in summary] == [0.03, 0.03, 0.03]
    assert "at the shared learning rate 0.03" in printed


def test_cli_lambda_and_bad_input(tmp_path, capsys):
    out = os.path.join(tmp_path, "lam")
    assert F.main(["lambda", "--lams", "0,1,10", "--inits", "3", "--points", "40", "--iters", "2", "--out", out,
                   "--quiet"]) == 0
    assert os.path.exists(out + ".csv")
    assert '"lambda": 10.0' in capsys.readouterr().out
    assert F.main(["convergence", "--dim", "7", "--out", out]) == 2
    assert "is 2-D" in capsys.readouterr().err
    assert F.main(["lambda", "--lams", "1,x", "--out", out]) == 2


def test_options_are_the_schema_fields():
    flags = {a.option_strings[0] for a in F.build_parser()._actions if a.option_strings}
    assert {f.flag for f in COMPARE.fields if f.cli} <= flags
    assert {"--inits", "--iters", "--points", "--optimizer", "--eval-every", "--lams", "--band", "--out", "--png",
            "--quiet"} <= flags


@pytest.mark.parametrize("argv, words", [
    (["convergence", "--inits", "21"], "--inits"),
    (["convergence", "--iters", "abc"], "whole number"),
    (["convergence", "--optimizer", "rmsprop"], "--optimizer"),
    (["convergence", "--methods", "relative,magic"], "--methods"),
    (["convergence", "--density", "unicorn"], "--density"),
    (["convergence", "--lr", "nan"], "--lr"),
    (["convergence", "--iters", "5", "--eval-every", "10"], "cannot exceed"),
    (["lambda", "--lams", ""], "--lams"),
    (["lambda", "--lams", "-1"], "--lams"),
    (["convergence", "--band", "wide"], "--band"),
    (["convergence", "--out", " "], "--out"),
    (["histogram"], "invalid choice"),
    (["convergence", "--no-such-option", "1"], "unrecognized"),
])
def test_every_bad_argument_is_one_line_exit_2_nothing_created(tmp_path, capsys, argv, words):
    out = os.path.join(tmp_path, "sub", "bad")
    argv = argv if "--out" in argv else [*argv, "--out", out]
    assert F.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert not os.path.exists(os.path.join(tmp_path, "sub"))


def test_gd_is_accepted_as_sgd(tmp_path, capsys):
    out = os.path.join(tmp_path, "gd")
    assert F.main(["convergence", "--optimizer", "gd", "--methods", "relative", *TINY, "--out", out]) == 0
    with open(out + ".csv") as f:
        assert '"optimizer": "sgd"' in f.readline()


def test_python_m_flowlab_figure_dispatches(tmp_path):
    out = os.path.join(tmp_path, "m")
    assert flowlab_main(["figure", "convergence", "--methods", "ordinary,snf", "--inits", "3", "--points", "40",
                         "--iters", "2", "--out", out, "--quiet"]) == 0
    assert os.path.exists(out + ".html")


# ---- over the budget (issue 16) ---------------------------------------------------------------------------------------
ISSUE = ["--density", "gaussian_mixture_nd", "--dim", "128", "--layers", "20", "--inits", "20", "--points", "20000"]


@pytest.mark.parametrize("argv, words", [
    (["convergence", *ISSUE, "--rates", "0.02"], "This run needs about 43 GiB"),  # the issue's link, one rate
    (["convergence", *ISSUE], "7 learning rates, 3 methods × 500 iterations"),  # the default sweep: 7 × the members
    (["convergence", "--density", "gaussian_mixture_nd", "--dim", "512", "--layers", "50", "--inits", "20",
      "--points", "20000"], "20 inits × 50 layers × D = 512 on 20,000 points"),
    (["lambda", "--density", "gaussian_mixture_nd", "--dim", "256", "--lams", "0,0.1,1,10,100"], "5 λ values"),
    (["convergence", "--density", "gaussian_mixture_nd", "--dim", "64", "--iters", "20000"],
     "FLOWLAB_JOB_SECONDS allows 60 s of compute: use at most"),
])
def test_over_budget_is_one_line_exit_2_nothing_made(tmp_path, capsys, monkeypatch, argv, words):
    from flowlab.compare import jobs

    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "512")
    monkeypatch.setenv("FLOWLAB_JOB_SECONDS", "60")
    monkeypatch.setattr(jobs, "make_data", lambda *a: pytest.fail("must not make data"))
    out = os.path.join(tmp_path, "sub", "fig")
    assert F.main([*argv, "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: This run needs about") and err.count("\n") == 1 and words in err, err
    assert not os.path.exists(os.path.join(tmp_path, "sub"))


def test_out_of_memory_while_running_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from flowlab.compare import jobs

    def oom(*a):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 20615843020 bytes.")

    monkeypatch.setattr(jobs._Group, "step", oom)
    out = os.path.join(tmp_path, "sub", "fig")
    assert F.main(["convergence", *TINY, "--out", out]) == 2
    err = capsys.readouterr().err
    assert err == ("error: Stopped at iteration 0 of 3: this machine could not allocate 19 GiB; use fewer points, "
                   "inits or layers.\n")
    assert not os.path.exists(os.path.join(tmp_path, "sub"))


# ---- the density of a typed text (issue 18) --------------------------------------------------------------------------
def test_cli_convergence_on_typed_text(tmp_path, capsys):
    out = os.path.join(tmp_path, "text")
    assert F.main(["convergence", "--density", "text", "--text", "Hi", *TINY, "--rates", "0.02", "--out", out]) == 0
    with open(out + ".csv") as f:
        assert '"text": "Hi"' in f.readline()
    printed = capsys.readouterr().out
    assert '"method": "relative"' in printed and "conclusion: " in printed
    # --text alone means the text density; with a toy it is an error, and so is bad text (check_text's sentence)
    assert F.main(["convergence", "--text", "Ho", *TINY, "--rates", "0.02", "--out", out + "2"]) == 0
    capsys.readouterr()
    for argv, words in ((["--density", "moons", "--text", "Hi"], "--text applies to --density text only."),
                        (["--text", " "], "Type some text to learn"),
                        (["--text", "x" * 13], "--text: The text must have at most 12 characters")):
        bad = os.path.join(tmp_path, "sub", "bad")
        assert F.main(["convergence", *argv, "--out", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
        assert not os.path.exists(os.path.join(tmp_path, "sub"))


# ---- the home page's movie -------------------------------------------------------------------------------------------
def test_cli_movie_tiny_writes_a_gif_and_the_record_the_home_page_reads(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "home"
    assert F.main(["movie", "--density", "moons", "--steps", "300", "--frames", "4", "--out", str(out),
                   "--quiet"]) == 0
    gif, rec = out / "moons.gif", json.loads((out / "moons.json").read_text())
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a") and gif.stat().st_size <= 5 * 2**20
    with Image.open(gif) as im:
        assert im.n_frames == rec["frames"] == 4  # step 0 and three chunk ends
    assert {"label", "layers", "method", "steps", "frames", "kl", "command", "recorded"} <= set(rec)
    assert rec["steps"] == 300 and rec["frame_steps"] == [0, 100, 200, 300] and rec["density"] == "moons"
    assert isinstance(rec["kl"], float) and "--steps 300 --frames 4" in rec["command"]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--steps", "5"], "--steps must be between 100"),
    (["--steps", "abc"], "--steps"),
    (["--frames", "1"], "--frames must be between 2"),
    (["--frames", "1000"], "--frames must be between 2"),
    (["--density", "unicorn"], "--density: The density must be one of"),
    (["--seed", "-1"], "--seed"),
    (["--out", " "], "--out"),
    (["--budget", "5"], "unrecognized"),
])
def test_every_bad_movie_argument_is_one_line_exit_2_nothing_created(tmp_path, capsys, argv, words):
    out = os.path.join(tmp_path, "sub")
    argv = argv if "--out" in argv else [*argv, "--out", out]
    assert F.main(["movie", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert not os.path.exists(out)


def test_movie_out_that_is_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert F.main(["movie", "--out", str(blocker / "home")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
