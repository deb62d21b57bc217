"""Make the student edition of captionrnn: solutions cut out, everything else kept.

Marker convention (nbgrader's syntax, so instructors recognise it)
-----------------------------------------------------------------
A solution region is a block of lines between two comment lines, each alone on its line and indented
like the code it encloses::

    def rnn_step_forward(x, prev_h, Wx, Wh, b):
        \"\"\"...docstring with the shapes...\"\"\"
        check_cell(...)                       # input validation stays outside the region
        ### BEGIN SOLUTION
        ### TODO: next_h = tanh(x Wx + prev_h Wh + b), shape (N, H)
        next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)
        ### END SOLUTION
        cache = (x, prev_h, Wx, Wh, next_h)   # given to the student: fixes the cache layout
        return next_h, cache

Rules, checked by :func:`find_regions` (a violation stops the release with file:line):

- ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are whole lines (after the indentation), come in
  pairs, do not nest, and both lines of a pair have the same indentation; every line between them is
  blank or indented at least as much. A region lies inside one function (or method).
- The optional hint: the ``###`` comment lines directly after ``### BEGIN SOLUTION``, the first one
  starting ``### TODO:``. Say what to compute: the equation and the shapes. Continuation lines start
  with ``### `` too.
- The docs section is found for you: the first ``docs/<file>.md#<anchor>`` in the hint, else in the
  enclosing function's docstring, else in the module docstring.
- Keep a fast-path dispatch (``if use_numba(): ... kernels ...``) and input validation *outside* the
  region: the region is the NumPy reference computation only. A function may hold several regions
  (e.g. the gate computation in the ``else:`` branch of the dispatch and the matmuls after it); the
  student meets them in order. Regions may include the ``return`` line.
- In the reference code markers are comments: they change nothing.

In the student edition each region becomes, at the region's indentation::

    # TODO: next_h = tanh(x Wx + prev_h Wh + b), shape (N, H)
    raise NotImplementedError("rnn_step_forward: not implemented yet. TODO: next_h = tanh(x Wx + "
                              "prev_h Wh + b), shape (N, H). See docs/bptt.md#vanilla-rnn-step")

What else the release does: removes ``captionrnn/kernels.py`` (the fused kernels are solutions too)
and the instructor tooling (``captionrnn/grading``, ``captionrnn release``, ``captionrnn grade``),
makes 'numpy' the only backend (``set_backend('numba')`` raises a clear error), drops numba from
``install_requires``, copies the notebooks in ``assignments/`` with outputs cleared (nbformat), the
tests, ``docs/``, ``setup.cfg``/``pyproject.toml``, and writes a README for students. Finally it
imports every module of the student edition in a fresh interpreter, so an import-time call of a
stubbed function is caught here and not by 200 students.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
TODO = "### TODO:"

# Paths (relative to the package directory) that are not part of the student edition.
EXCLUDE_FROM_PACKAGE = ("kernels", "grading", "cli/release.py", "cli/grade.py")
# Tests of the instructor tooling itself: they need captionrnn.grading, which is not shipped.
EXCLUDE_TESTS = (
    "test_grading.py",
    "test_release.py",
    "test_benchmarks.py",
)  # benchmarks/ is not shipped
IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.pyo", "*.so", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis"
)
DOCS_REF = re.compile(r"docs/[\w./-]+\.md(?:#[\w-]+)?")


class ReleaseError(Exception):
    """A problem with the markers or the output folder; the message says where and what to do."""


@dataclass
class Region:
    """One solution region: 0-based line indices of its BEGIN and END lines, and what replaces it."""

    path: str
    begin: int
    end: int
    indent: str
    function: str
    hint_lines: list
    docs: str

    @property
    def hint(self):
        return " ".join(h.strip() for h in self.hint_lines).strip()

    @property
    def message(self):
        todo = self.hint or "write this part of the function (its docstring gives the shapes)"
        text = f"{self.function}: not implemented yet. TODO: {todo.rstrip('.')}"
        if self.docs and self.docs not in todo:
            text += f". See {self.docs}"
        return text


def _functions(tree):
    """(qualname, first line, last line, docstring) of every function, outermost first (1-based lines)."""
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    out.append(
                        (name, child.lineno, child.end_lineno, ast.get_docstring(child) or "")
                    )
                walk(child, name + ".")

    walk(tree, "")
    return out


def find_regions(source, path="<string>"):
    """The solution regions of one Python source, checked against the rules in the module docstring.

    Returns a list of :class:`Region` (empty when the file has no markers). Raises ReleaseError
    naming ``path:line`` for unpaired, nested, mis-indented or out-of-function markers.
    """
    lines = source.splitlines()
    if BEGIN not in source and END not in source:
        return []
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise ReleaseError(
            f"{path}:{exc.lineno}: cannot parse the reference code: {exc.msg}"
        ) from exc
    functions = _functions(tree)
    module_doc = ast.get_docstring(tree) or ""
    regions, open_at = [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped not in (BEGIN, END):
            if BEGIN in stripped or END in stripped:
                raise ReleaseError(
                    f"{path}:{i + 1}: a marker must be alone on its line, exactly "
                    f"'{BEGIN}' or '{END}' after the indentation; got {stripped!r}"
                )
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if stripped == BEGIN:
            if open_at is not None:
                raise ReleaseError(
                    f"{path}:{i + 1}: '{BEGIN}' inside the region opened at line "
                    f"{open_at + 1}; regions do not nest (close it with '{END}' first)"
                )
            open_at = i
            continue
        if open_at is None:
            raise ReleaseError(f"{path}:{i + 1}: '{END}' without a '{BEGIN}' before it")
        begin_indent = lines[open_at][: len(lines[open_at]) - len(lines[open_at].lstrip())]
        if indent != begin_indent:
            raise ReleaseError(
                f"{path}:{i + 1}: '{END}' is indented {len(indent)} spaces but its "
                f"'{BEGIN}' (line {open_at + 1}) {len(begin_indent)}; indent both like the code"
            )
        for j in range(open_at + 1, i):
            if lines[j].strip() and not lines[j].startswith(begin_indent):
                raise ReleaseError(
                    f"{path}:{j + 1}: line inside the region starting at line {open_at + 1} "
                    "is indented less than its markers; the region must be one block"
                )
        enclosing = [
            f for f in functions if f[1] < open_at + 1 <= f[2]
        ]  # END may follow the last statement
        if not enclosing:
            raise ReleaseError(
                f"{path}:{open_at + 1}: solution region outside any function; "
                "regions must lie inside the function the student writes"
            )
        qualname, _, _, doc = enclosing[-1]  # innermost
        hint_lines = []
        for j in range(open_at + 1, i):
            s = lines[j].strip()
            if not s.startswith("###"):
                break
            if not hint_lines and not s.startswith(TODO):
                break
            hint_lines.append(s[len(TODO) :] if not hint_lines else s[3:])
        hint = " ".join(h.strip() for h in hint_lines).strip()
        # A forward's derivation usually sits in its backward's docstring.
        partner = next(
            (
                f[3]
                for f in functions
                if qualname.endswith("_forward")
                and f[0] == qualname[: -len("_forward")] + "_backward"
            ),
            "",
        )
        refs = (
            DOCS_REF.findall(hint)
            or DOCS_REF.findall(doc)
            or DOCS_REF.findall(partner)
            or DOCS_REF.findall(module_doc)
        )
        code = [
            lines[j]
            for j in range(open_at + 1 + len(hint_lines), i)
            if lines[j].strip() and not lines[j].strip().startswith("#")
        ]
        if not code:
            raise ReleaseError(
                f"{path}:{open_at + 1}: empty solution region (no code between the markers)"
            )
        regions.append(
            Region(
                path,
                open_at,
                i,
                begin_indent,
                qualname,
                [h.strip() for h in hint_lines],
                refs[0] if refs else "",
            )
        )
        open_at = None
    if open_at is not None:
        raise ReleaseError(f"{path}:{open_at + 1}: '{BEGIN}' is never closed with '{END}'")
    return regions


def stub_source(source, path="<string>"):
    """``source`` with every solution region replaced by a TODO comment and a NotImplementedError.

    Returns ``(new_source, regions)``. The result is checked to parse.
    """
    regions = find_regions(source, path)
    if not regions:
        return source, []
    lines = source.splitlines()
    out, pos = [], 0
    for r in regions:
        out.extend(lines[pos : r.begin])
        # The hint keeps the instructor's line breaks.
        out.extend(
            f"{r.indent}# TODO: {h}" if k == 0 else f"{r.indent}#   {h}"
            for k, h in enumerate(r.hint_lines)
        )
        out.append(f"{r.indent}raise NotImplementedError({r.message!r})")
        pos = r.end + 1
    out.extend(lines[pos:])
    new = "\n".join(out) + ("\n" if source.endswith("\n") else "")
    try:
        ast.parse(new, filename=path)
    except SyntaxError as exc:  # e.g. a region that was the only statement after a decorator
        raise ReleaseError(
            f"{path}: the student version does not parse ({exc.msg}, line {exc.lineno}); "
            "check the markers around that line"
        ) from exc
    return new, regions


BACKEND_PATCH = '''

# ---- student edition (added by `captionrnn release`) --------------------------------------------
# The Numba kernels are the fast solutions, so they are not part of the student edition: the NumPy
# reference, the code you write, is the only backend.


class BackendUnavailable(RuntimeError):
    """The requested backend is not part of the student edition."""


BACKENDS = ("numpy",)
_validate_with_numba = _validate


def _validate(name):
    if name == "numba":
        raise BackendUnavailable("the 'numba' backend (fused Numba kernels) is not part of the student "
                                 "edition; the NumPy reference you write is the only backend here "
                                 "(unset CAPTIONRNN_BACKEND or set it to 'numpy')")
    return _validate_with_numba(name)


_current = "numpy"
'''

STUDENT_CONFTEST = """

# ---- student edition (added by `captionrnn release`) --------------------------------------------
# Tests that compare with the Numba backend are skipped: it is not part of the student edition.
collect_ignore = {ignore!r}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.typename == "BackendUnavailable":
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           "Skipped: needs the Numba backend, which is not part of the student edition")
"""

README = """\
# captionrnn: student edition

You will write the layers of an image-captioning network in plain NumPy: the forward and backward
passes of every layer, checked against finite differences, then train the captioning model with them.
Every function you write raises `NotImplementedError("<function>: not implemented yet. TODO: ...")`
until you do; the TODO says what to compute (the equation and the shapes) and which section of
`docs/` derives it. Shapes use one legend everywhere: N batch, T timesteps, D input features,
W word-vector size, H hidden size, V vocabulary size, K attention positions.

## Set up

    python -m venv .venv && . .venv/bin/activate
    pip install -e ".[test]"

## What to implement, in this order

{order}

Each file's docstring and each function's docstring give the shapes; `docs/bptt.md` (and
`docs/attention.md`) derive every backward pass in the code's notation. Search for `TODO` to find the
places (`grep -n "TODO" captionrnn/*.py`).

## Check your work

    captionrnn gradcheck              # finite-difference check of every backward pass
    pytest                            # the tests; start with one file: pytest tests/test_layers.py
    pytest -x -k rnn_step             # one function at a time

A check that fails with `NotImplementedError: ... not implemented yet` is simply not done yet.
The notebooks in `assignments/` walk through each part and run the same checks with the expected
tolerances printed.

## Hand in

Zip this folder (or just its `captionrnn/` folder) and upload it. The grader runs hidden tests against
your `captionrnn` package only, with a time limit per test: a function that crashes or loops forever
loses its own points, not the others'.
"""


@dataclass
class ReleaseReport:
    out: Path
    regions: list = field(default_factory=list)
    files: list = field(default_factory=list)
    notebooks: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def summary(self):
        by_file = {}
        for r in self.regions:
            by_file.setdefault(r.path, []).append(r.function)
        lines = [
            f"student edition written to {self.out}",
            f"  {len(self.regions)} solution regions stubbed in {len(by_file)} files:",
        ]
        for path, funcs in by_file.items():
            names = list(dict.fromkeys(funcs))
            lines.append(f"    {path}: " + ", ".join(names))
        lines.append(f"  notebooks: {len(self.notebooks)} (outputs cleared)")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def source_tree():
    """(package directory, project root or None): where the reference being released lives."""
    import captionrnn

    pkg = Path(captionrnn.__file__).resolve().parent
    root = pkg.parent
    has_project = (root / "setup.cfg").is_file() or (root / "pyproject.toml").is_file()
    return pkg, (root if has_project else None)


def _excluded(rel):
    rel = rel.as_posix()
    return any(rel == e or rel.startswith(e + "/") for e in EXCLUDE_FROM_PACKAGE)


def _check_no_kernel_imports(path, source):
    """The student edition has no kernels.py, so no module may import it at import time."""

    def visit(node):
        for sub in ast.iter_child_nodes(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue  # runs only when called
            names = []
            if isinstance(sub, ast.Import):
                names = [a.name for a in sub.names]
            elif isinstance(sub, ast.ImportFrom):
                names = [f"{sub.module}.{a.name}" for a in sub.names] + [sub.module or ""]
            if any(n == "captionrnn.kernels" or n.split(".")[0] == "numba" for n in names):
                raise ReleaseError(
                    f"{path}:{sub.lineno}: imports the Numba kernels at import time; the student "
                    "edition has no kernels.py. Import them inside the `if use_numba():` branch"
                )
            visit(sub)

    visit(ast.parse(source, filename=str(path)))


def _copy_package(pkg, dest, report):
    for src in sorted(pkg.rglob("*")):
        rel = src.relative_to(pkg)
        if _excluded(rel) or any(
            part in ("__pycache__", ".ipynb_checkpoints") for part in rel.parts
        ):
            continue
        if src.suffix in (".pyc", ".pyo", ".so"):
            continue
        target = dest / rel
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".py":
            text = src.read_text(encoding="utf-8")
            display = f"captionrnn/{rel.as_posix()}"
            text, regions = stub_source(text, display)
            report.regions.extend(regions)
            if rel.as_posix() == "backend.py":
                for name in ("def _validate(", "_current =", "BACKENDS ="):
                    if name not in text:
                        raise ReleaseError(
                            f"{display}: expected `{name}` there to switch the student edition "
                            "to the numpy backend; update BACKEND_PATCH in grading/release.py"
                        )
                text = text.rstrip("\n") + "\n" + BACKEND_PATCH
            _check_no_kernel_imports(display, text)
            target.write_text(text, encoding="utf-8")
        else:
            shutil.copy2(src, target)
        report.files.append(target)


def _student_setup_cfg(text):
    """setup.cfg without numba in install_requires (the student edition has no kernels)."""
    return (
        "\n".join(line for line in text.splitlines() if not re.match(r"\s+numba\b", line)).rstrip(
            "\n"
        )
        + "\n"
    )


def _clear_notebook(src, dest):
    import nbformat

    nb = nbformat.read(str(src), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    nbformat.write(nb, str(dest))


def _order(regions):
    """The README's list of functions to write, grouped by file in the order they were released."""
    order = ["layers.py", "rnn.py", "lstm.py", "gru.py", "attention.py", "model.py"]
    by_file = {}
    for r in regions:
        by_file.setdefault(r.path, []).append(r.function)
    files = sorted(
        by_file, key=lambda p: (order.index(Path(p).name) if Path(p).name in order else 99, p)
    )
    lines = []
    for i, path in enumerate(files, 1):
        names = ", ".join(f"`{n}`" for n in dict.fromkeys(by_file[path]))
        lines.append(f"{i}. `{path}`: {names}")
    return "\n".join(lines) if lines else "(no solution regions are marked)"


def check_imports(out, timeout=300):
    """Import every module of the student edition in a fresh interpreter; raise ReleaseError on failure."""
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import captionrnn
        assert captionrnn.__file__.startswith(sys.argv[1]), captionrnn.__file__
        for m in pkgutil.walk_packages(captionrnn.__path__, "captionrnn."):
            if not m.name.endswith("__main__"):
                importlib.import_module(m.name)
        import captionrnn.rnn_layers
    """)
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_BACKEND"}
    env["PYTHONPATH"] = str(out)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(Path(out).resolve())],
        cwd=str(out),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise ReleaseError(
            "the student edition does not import cleanly (is a stubbed function called at "
            f"import time?):\n{proc.stderr[-3000:]}"
        )


def release(out, force=False, check=True):
    """Write the student edition of the installed/checkout captionrnn into ``out``.

    Refuses a non-empty ``out`` unless ``force`` (then its contents are replaced). Returns a
    :class:`ReleaseReport`. Raises ReleaseError with a one-line reason on any problem.
    """
    out = Path(out)
    pkg, root = source_tree()
    if out.exists() and not out.is_dir():
        raise ReleaseError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ReleaseError(
                f"{out} is not empty; choose an empty folder or pass --force to replace its contents"
            )
        if out.resolve() in (
            pkg.resolve(),
            *(p for p in [root] if p),
        ) or pkg.resolve().is_relative_to(out.resolve()):
            raise ReleaseError(
                f"refusing to overwrite {out}: it holds the reference code being released"
            )
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    report = ReleaseReport(out)
    _copy_package(pkg, out / "captionrnn", report)

    if root is None:
        report.notes.append(
            "no project folder next to the package (installed, not a checkout): "
            "tests, docs, notebooks and setup files were not copied"
        )
    else:
        for name in ("pyproject.toml", "setup.cfg", "LICENSE", ".gitignore"):
            if (root / name).is_file():
                text = (root / name).read_text(encoding="utf-8")
                (out / name).write_text(
                    _student_setup_cfg(text) if name == "setup.cfg" else text, encoding="utf-8"
                )
        if (root / "docs").is_dir():
            shutil.copytree(root / "docs", out / "docs", ignore=IGNORE)
        else:
            report.notes.append("no docs/ folder to copy")
        tests = root / "tests"
        if tests.is_dir():
            shutil.copytree(
                tests,
                out / "tests",
                ignore=shutil.ignore_patterns(
                    "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", *EXCLUDE_TESTS
                ),
            )
            ignore = sorted(
                p.name
                for p in (out / "tests").glob("test_*.py")
                if re.search(
                    r"captionrnn\.kernels|from captionrnn import kernels|^import numba",
                    p.read_text(encoding="utf-8"),
                    re.M,
                )
            )
            conftest = out / "tests" / "conftest.py"
            head = (
                conftest.read_text(encoding="utf-8")
                if conftest.is_file()
                else '"""Shared fixtures."""\n'
            )
            if not re.search(r"^import pytest$", head, re.M):
                head = "import pytest\n" + head
            conftest.write_text(
                head.rstrip("\n") + "\n" + STUDENT_CONFTEST.format(ignore=ignore), encoding="utf-8"
            )
        else:
            report.notes.append("no tests/ folder to copy")
        notebooks = (
            sorted((root / "assignments").glob("*.ipynb"))
            if (root / "assignments").is_dir()
            else []
        )
        if notebooks:
            (out / "assignments").mkdir(exist_ok=True)
            for nb in notebooks:
                _clear_notebook(nb, out / "assignments" / nb.name)
                report.notebooks.append(nb.name)
        else:
            report.notes.append("assignments/ has no notebooks yet: none copied")
    (out / "README.md").write_text(README.format(order=_order(report.regions)), encoding="utf-8")
    if check:
        check_imports(out)
    return report
