"""The README stays true: its test command is the one CI runs, the files it points to exist, it stays short."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def test_ci_runs_the_readme_test_command():
    readme = _read("README.md")
    commands = re.findall(r"^(pip install -r \S+ && [^#\n]*?)\s+#", readme, flags=re.M)
    assert len(commands) == 2, commands
    run_line = [ln for ln in _read(".ci", "run").splitlines() if ln.startswith("pip install")]
    assert run_line == [commands[1].strip()]
    assert "requirements.txt" in commands[0] and "streamlit run app.py" in commands[0]


def test_files_the_readme_names_exist_and_it_stays_short():
    readme = _read("README.md")
    assert len(readme.splitlines()) <= 150
    for path in re.findall(r"\((assets/[^)]+)\)", readme):
        assert os.path.exists(os.path.join(ROOT, path)), path
    table = readme[readme.index("## Measured results"):]
    for name in re.findall(r"`([a-z_0-9]+\.json)`", table):
        assert os.path.exists(os.path.join(ROOT, "assets", "benchmarks", name)), name
    dev = _read("requirements-dev.txt")
    assert "-r requirements.txt" in dev and "pytest" in dev and "pytest" not in _read("requirements.txt")
