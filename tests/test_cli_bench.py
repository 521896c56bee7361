"""``python -m flowlab bench`` (flowlab.cli.bench): a tiny run end to end, the schema's options, and every bad
argument as one line "error: ..." with exit status 2 and nothing written."""
import argparse

import pytest

from flowlab import benchmark as B
from flowlab import presets
from flowlab.__main__ import main as flowlab_main
from flowlab.cli import bench


def test_cli_smoke(tmp_path, capsys):
    out, csv_out = tmp_path / "r.json", tmp_path / "r.csv"
    rc = bench.main(["--dims", "4,8", "--methods", "relative,exact", "--repeats", "2", "--batch", "10",
                     "--out", str(out), "--csv", str(csv_out), "--note", "test"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "slope" in text and "faster than exact" in text and f"wrote {out}" in text
    assert "[  4/4] D=     8 exact" in text
    res = B.BenchResult.load(out)
    assert len(res.points) == 4 and res.meta["note"] == "test" and csv_out.read_text().startswith("method,dim")
    assert res.meta["repeats"] == 2 and res.meta["batch"] == 10


def _steady(load):
    """A synthetic run on the live grid: relative ∝ D², exact ∝ D³, five repeats within ±3 %."""
    pts = [B.Point(m, d, "ok", time_s=t, times_s=[t * f for f in (0.97, 0.99, 1.0, 1.01, 1.03)])
           for d in presets.TIMING_LIVE_DIMS for m, t in (("relative", 1e-9 * d ** 2), ("exact", 2e-11 * d ** 3))]
    return B.BenchResult({"methods": ["relative", "exact"], "fit_range": list(presets.TIMING_FIT_RANGE),
                          "load_average_start": [load, 0, 0], "threads": {"affinity_cpus": 2}}, pts)


def test_summary_gives_the_spread_and_the_pages_verdict():
    quiet, busy = bench.format_summary(_steady(0.5)), bench.format_summary(_steady(9.0))
    spread = B.stability(_steady(0.5)).spread_text()
    assert f"median (middle half of the repeats): {spread}" in quiet and spread.startswith("57.9× (")
    assert quiet.endswith("stable by the Timing page's rule (it may replace the recorded headline): yes")
    assert busy.endswith("no: the machine was busy, load average 9.0 at the start on 2 cores")


def test_quiet_prints_nothing(capsys):
    assert bench.main(["--dims", "4", "--methods", "relative", "--repeats", "1", "--batch", "4", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_cli_via_main_module_bad_input(capsys):
    assert flowlab_main(["bench", "--dims", "64,abc"]) == 2
    assert "error: Dimension 'abc' is not a whole number" in capsys.readouterr().err
    assert flowlab_main(["bench", "--dims", "8", "--methods", "fast"]) == 2
    assert "Unknown gradient method" in capsys.readouterr().err
    assert flowlab_main(["bench", "--dims", "8", "--out", "/no/such/folder/x.json"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("argv, msg", [
    (["--batch", "0"], "--batch: The batch size must be between 1 and 100,000"),
    (["--cap", "x"], "--cap: The time cap per point must be a number"),
    (["--repeats", "1000"], "--repeats: The number of repeats must be between"),
    (["--layers", "2.5"], "--layers: The number of layers must be a whole number"),
    (["--seed", "-1"], "--seed: The seed must be between"),
    (["--methods", ""], "Choose at least one gradient method"),
    (["--fit", "512"], "--fit takes two numbers"), (["--fit", "a,b"], "--fit takes two numbers"),
    (["--fit", "10,5"], "slope-fit window"), (["--mem-limit-gb", "0"], "--mem-limit-gb must be positive"),
    (["--max-dim", "100000"], "The grid needs 2 <= smallest D <= largest D <= 65536"),
    (["--per-octave", "0"], "at least one point per doubling"),
    (["--min-dim", "abc"], "argument --min-dim: invalid int value"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--dims", "8", "--csv", "/no/such/folder/x.csv"], "does not exist")])
def test_bad_arguments_are_one_line(tmp_path, capsys, monkeypatch, argv, msg):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "run_benchmark", lambda *a, **k: pytest.fail("must not run"))
    assert bench.main(argv + ["--out", "r.json"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.startswith("error: ") and cap.err.count("\n") == 1 and msg in cap.err, cap.err
    assert not list(tmp_path.iterdir())  # nothing created


def test_help_exits_zero(capsys):
    assert bench.main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--dims", "--methods", "--batch", "--layers", "--repeats", "--cap", "--seed", "--min-dim",
                 "--max-dim", "--per-octave", "--mem-limit-gb", "--fit", "--note", "--out", "--csv", "--quiet"):
        assert flag in text, flag


def test_config_from_args_defaults():
    args = bench.build_parser().parse_args([])
    c = bench.config_from_args(args)
    assert c.dims == B.default_dims(B.default_max_dim()) and c.methods == B.ALL_METHODS
    assert (c.batch, c.layers, c.repeats, c.cap, c.seed) == tuple(presets.TIMING[k] for k in
                                                                  ("batch", "layers", "repeats", "cap", "seed"))
    c = bench.config_from_args(bench.build_parser().parse_args(
        ["--min-dim", "32", "--max-dim", "512", "--per-octave", "1", "--methods", "snf", "--cap", "5",
         "--mem-limit-gb", "0.5", "--fit", "64,512"]))
    assert c.dims == (32, 64, 128, 256, 512) and c.methods == ("self_normalizing",) and c.cap == 5.0
    assert c.mem_limit == 2 ** 29 and c.fit_range == (64.0, 512.0)
    assert isinstance(bench.build_parser(), argparse.ArgumentParser)


# ---- over the budget (issue 16) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--dims", "32768", "--methods", "relative"], "Nothing in this grid can run: its smallest point"),
    (["--dims", "4096", "--layers", "64"], "needs about 15 GiB; FLOWLAB_SESSION_MEMORY_MB allows 512 MB: use D up to"),
    (["--dims", "64", "--mem-limit-gb", "100000"], "--mem-limit-gb 100000 is more than FLOWLAB_SESSION_MEMORY_MB "
                                                   "allows 512 MB"),
    (["--dims", "64", "--methods", "autodiff_jacobian", "--batch", "100000"], "Nothing in this grid can run"),
])
def test_over_budget_is_one_line_and_nothing_runs(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "512")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "run_benchmark", lambda *a, **k: pytest.fail("must not run"))
    monkeypatch.setattr(B.measure, "make_inputs", lambda *a, **k: pytest.fail("must not build inputs"))
    assert bench.main(argv + ["--out", "r.json", "--csv", "r.csv"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.startswith("error: ") and cap.err.count("\n") == 1 and words in cap.err, cap.err
    assert not list(tmp_path.iterdir())


def test_the_budget_reaches_the_run(tmp_path, monkeypatch):
    """A grid that partly fits runs, with the points over the limit marked from their sizes."""
    monkeypatch.setenv("FLOWLAB_SESSION_MEMORY_MB", "64")
    out = tmp_path / "r.json"
    assert bench.main(["--dims", "8,2048", "--methods", "relative", "--batch", "10", "--repeats", "1", "--quiet",
                       "--out", str(out)]) == 0
    res = B.BenchResult.load(out)
    assert [(p.dim, p.status) for p in res.points] == [(8, "ok"), (2048, "too_big")]
    assert "over the 64 MB limit" in res.points[1].note and res.meta["mem_limit_bytes"] == 64 * 2 ** 20
