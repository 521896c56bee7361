"""The package's shape: flowlab never imports streamlit, no import cycles, no private names imported across modules,
no function-level imports except optional dependencies, modules of a reasonable size."""
import ast
import os
import pkgutil
import subprocess
import sys

import flowlab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTIONAL = {"kaleido", "playwright", "playwright.sync_api", "PIL", "resource"}  # imported only where used
MAX_LINES = 450


def modules():
    out = {}
    for info in pkgutil.walk_packages(flowlab.__path__, "flowlab."):
        spec = info.module_finder.find_spec(info.name)
        out[info.name] = (spec.origin, info.ispkg)
    return out


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name, origin, is_pkg):
    """(imported flowlab modules at module level, [(line, what) of function-level imports], private imports)."""
    tree = ast.parse(open(origin).read())
    top, inner, private = set(), [], []
    mods = modules()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            src = _resolve(name, is_pkg, node)
            targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src for a in node.names]
            if src.startswith("flowlab"):
                private += [(node.lineno, a.name) for a in node.names if a.name.startswith("_")]
        top.update(t for t in targets if t.startswith("flowlab"))
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    inner += [(node.lineno, a.name) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    inner.append((node.lineno, _resolve(name, is_pkg, node)))
    return top, inner, private


def test_package_imports_without_streamlit():
    names = " ".join(f"import {m};" for m in modules())
    code = f"import sys; {names} assert 'streamlit' not in sys.modules, 'streamlit imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_no_import_cycles_private_imports_or_function_level_imports():
    mods = modules()
    graph, problems = {}, []
    for name, (origin, is_pkg) in mods.items():
        top, inner, private = imports(name, origin, is_pkg)
        graph[name] = {t for t in top if t in mods and t != name and not name.startswith(t + ".")}
        problems += [f"{name}:{ln} imports the private name {what}" for ln, what in private]
        problems += [f"{name}:{ln} imports {what} inside a function" for ln, what in inner
                     if what.split(".")[0] not in OPTIONAL and what not in OPTIONAL]
    # a package's __init__ re-exporting its own submodules is not a cycle
    state = {}

    def visit(n, path):
        state[n] = 1
        for m in graph.get(n, ()):
            if n.startswith(m + ".") or m.startswith(n + "."):
                continue
            if state.get(m) == 1:
                problems.append("import cycle: " + " -> ".join(path + [m]))
            elif not state.get(m):
                visit(m, path + [m])
        state[n] = 2

    for n in graph:
        if not state.get(n):
            visit(n, [n])
    assert not problems, "\n".join(problems)


def test_modules_are_small():
    big = []
    for name, (origin, _) in modules().items():
        n = sum(1 for _ in open(origin))
        if n > MAX_LINES:
            big.append(f"{name}: {n} lines")
    assert not big, big
