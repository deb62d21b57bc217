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
- Keep input validation *outside* the region (the backend choice lives in
  ``captionrnn/dispatch.py``, never in a student's function): the region is the NumPy reference
  computation only. A function may hold several regions; the student meets them in order. Regions
  may include the ``return`` line.
- In the reference code markers are comments: they change nothing.

In the student edition each region becomes, at the region's indentation::

    # TODO: next_h = tanh(x Wx + prev_h Wh + b), shape (N, H)
    raise NotImplementedError("rnn_step_forward: not implemented yet. TODO: next_h = tanh(x Wx + "
                              "prev_h Wh + b), shape (N, H). See docs/bptt.md#vanilla-rnn-step")

What else the release does (docs/instructors.md has the list): removes ``captionrnn/kernels/``
(the fused kernels are solutions too) and the instructor tooling (``captionrnn/grading`` and the
CLI modules that use it), makes 'numpy' the only backend, drops numba from ``install_requires``,
copies the notebooks (outputs cleared, plain json), the tests (less those of the tooling and those
whose oracle is a solution), the docs (less instructors.md/grading.md, solution code cut by
:func:`student_doc`), the setup files, and writes a README and a .gitignore for students. It reads
all of it from the checkout, or from ``captionrnn/_edition`` after a plain ``pip install .``. Then
it searches every file it wrote for the solutions (:func:`leaks`) and imports every module of the
edition in a fresh interpreter, so an import-time call of a stubbed function is caught here and not
by 200 students.
"""

import ast
import json
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
EXCLUDE_FROM_PACKAGE = ("kernels", "grading", "_edition")
# Tests of the instructor tooling itself: they need captionrnn.grading, which is not shipped.
# (Any other test that imports captionrnn.grading, captionrnn.kernels or numba is dropped too.)
# benchmarks/ and docs/make_figures.py are not shipped
EXCLUDE_TESTS = ("test_benchmarks.py", "test_edition_e2e.py", "test_figures.py")
IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.pyo", "*.so", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis"
)
DOCS_REF = re.compile(r"docs/[\w./-]+\.md(?:#[\w-]+)?")


class ReleaseError(Exception):
    """A problem with the markers or the output folder; the message says where and what to do."""


@dataclass
class Region:
    """One solution region: 0-based indices of its BEGIN and END lines, and what replaces it."""

    path: str
    begin: int
    end: int
    indent: str
    function: str
    hint_lines: list
    docs: str
    solution: list = field(default_factory=list)  # the reference lines between the markers
    stub: list = field(default_factory=list)  # what replaces them in the student edition

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
    """(qualname, first line, last line, docstring) of every function, outermost first (1-based)."""
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
                lines[open_at + 1 + len(hint_lines) : i],
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
        r.stub = [
            f"{r.indent}# TODO: {h}" if k == 0 else f"{r.indent}#   {h}"
            for k, h in enumerate(r.hint_lines)
        ]
        r.stub.append(f"{r.indent}raise NotImplementedError({r.message!r})")
        out.extend(r.stub)
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


BACKEND_READ = "\n_current = _from_environment()"  # where backend.py reads CAPTIONRNN_BACKEND
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
        raise BackendUnavailable("the 'numba' backend (fused Numba kernels) is not part of the "
                                 "student edition; the NumPy reference you write is the only "
                                 "backend here "
                                 "(unset CAPTIONRNN_BACKEND or set it to 'numpy')")
    return _validate_with_numba(name)

'''

STUDENT_CONFTEST = """

# ---- student edition (added by `captionrnn release`) --------------------------------------------
# Tests that compare with the Numba backend are skipped: it is not part of the student edition.


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.typename == "BackendUnavailable":
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           "Skipped: needs the Numba backend, not part of the student edition")
"""


README = """\
# captionrnn: student edition

You will write the layers of an image-captioning network in plain NumPy: the forward and backward
passes of every layer, checked against finite differences, then train the captioning model with
them.
Every function you write raises `NotImplementedError("<function>: not implemented yet. TODO: ...")`
until you do; the TODO says what to compute (the equation and the shapes) and which section of
`docs/` derives it. Shapes use one legend everywhere: N batch, T timesteps, D input features,
W word-vector size, H hidden size, V vocabulary size, K attention positions.

## Set up (once)

In this folder, with Python 3.10 or newer:

    python -m venv .venv
    . .venv/bin/activate                  # Windows: .venv\\Scripts\\activate
    pip install -e ".[notebook,test]"     # the package (editable: your edits count at once),
                                          # Jupyter and pytest

## Work through the notebooks

    jupyter notebook assignments/         # or open assignments/*.ipynb in VS Code

Start with `assignments/README.md`, then the notebooks in order. Each notebook names the file and
the function to write, and checks it: every check prints `OK` or `FAIL` with the expected value.
The first cell turns on autoreload, so after you save a `.py` file the next cell uses it.

## What to implement, in this order

{order}

Each file's docstring and each function's docstring give the shapes; `docs/bptt.md` (and
`docs/attention.md`) derive every backward pass in the code's notation. Search for `TODO` to find
the places (`grep -n "TODO" captionrnn/*.py`).

## Check your work

    captionrnn gradcheck              # finite-difference check of every backward pass
    pytest                            # the tests; start with one file: pytest tests/test_layers.py
    pytest -x -k rnn_step             # one function at a time

A check that fails with `NotImplementedError: ... not implemented yet` is simply not done yet.

## Hand in

    captionrnn handin                 # writes handin.zip: your captionrnn/*.py, nothing else

Upload `handin.zip`. It holds only the code that is graded (no virtual environment, caches, data,
figures or notebooks), so it stays small; do not zip this folder yourself. The grader runs hidden
tests against your `captionrnn` package, with a time limit per test: a function that crashes or
loops forever loses its own points, not the others'.
"""

GITIGNORE = """\
# Made by `captionrnn release`: what never belongs in a hand-in or a commit.
.venv/
venv/
__pycache__/
*.py[cod]
*.egg-info/
build/
dist/
.ipynb_checkpoints/
.pytest_cache/
.hypothesis/
assignments/figures/
figures/
runs/
handin.zip
"""

# What a student edition is made from, relative to the project root (a checkout) or to
# captionrnn/_edition/ (a plain install; setup.py copies the same names there).
EDITION_SOURCES = ("assignments", "docs", "tests", "setup.cfg", "pyproject.toml", "LICENSE")
REQUIRED_SOURCES = ("assignments", "docs", "tests", "setup.cfg", "pyproject.toml")
# Documents for instructors only (the grader's internals).
NOT_SHIPPED_DOCS = ("instructors.md", "grading.md")
DOC_BEGIN = re.compile(r"^\s*<!--\s*BEGIN SOLUTION\s*-->\s*$")
DOC_END = re.compile(r"^\s*<!--\s*END SOLUTION\s*-->\s*$")
DOC_CUT = (
    "*(The reference code of this step is not part of the student edition: it is what you write. "
    "The equations above are all you need.)*"
)
REINSTALL = "pip install --force-reinstall --no-deps /path/to/your/captionrnn/checkout"


@dataclass
class ReleaseReport:
    out: Path
    regions: list = field(default_factory=list)
    files: list = field(default_factory=list)
    notebooks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    source: str = ""

    def summary(self):
        by_file = {}
        for r in self.regions:
            by_file.setdefault(r.path, []).append(r.function)
        lines = [
            f"student edition written to {self.out} (from {self.source})",
            f"  {len(self.regions)} solution regions stubbed in {len(by_file)} files:",
        ]
        for path, funcs in by_file.items():
            names = list(dict.fromkeys(funcs))
            lines.append(f"    {path}: " + ", ".join(names))
        lines.append(f"  notebooks: {len(self.notebooks)} (outputs cleared)")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def solution_map(self):
        """{file: [{function, stub, solution}]}: what fills the edition back in (:func:`fill`)."""
        out = {}
        for r in self.regions:
            out.setdefault(r.path, []).append(
                {"function": r.function, "stub": r.stub, "solution": r.solution}
            )
        return out


def source_tree():
    """(package directory, folder holding EDITION_SOURCES or None, description).

    A checkout: the project root next to the package. A plain ``pip install .``: the copy that
    setup.py put into ``captionrnn/_edition``. Neither: None (release refuses, saying how to fix
    it).
    """
    import captionrnn

    pkg = Path(captionrnn.__file__).resolve().parent
    root = pkg.parent
    if (root / "setup.cfg").is_file() and (root / "tests").is_dir():
        return pkg, root, f"the checkout {root}"
    if (pkg / "_edition").is_dir():
        return pkg, pkg / "_edition", f"the installed package {pkg}"
    return pkg, None, f"the installed package {pkg}"


def _exclude_cli(rel, text):
    """Instructor commands: the ones that use captionrnn.grading (release, grade, autograder...)."""
    return rel.parts[0] == "cli" and re.search(r"captionrnn\.grading|from \.\.grading", text)


def _excluded(rel):
    rel = rel.as_posix()
    return any(rel == e or rel.startswith(e + "/") for e in EXCLUDE_FROM_PACKAGE)


def _check_no_kernel_imports(path, source):
    """The student edition has no kernels package, so no module may import it at import time."""

    def visit(node):
        for sub in ast.iter_child_nodes(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue  # runs only when called
            names = []
            if isinstance(sub, ast.Import):
                names = [a.name for a in sub.names]
            elif isinstance(sub, ast.ImportFrom):
                names = [f"{sub.module}.{a.name}" for a in sub.names] + [sub.module or ""]
            if any(n.startswith("captionrnn.kernels") or n.split(".")[0] == "numba" for n in names):
                raise ReleaseError(
                    f"{path}:{sub.lineno}: imports the Numba kernels at import time; the student "
                    "edition has no kernels package. Import them lazily, as "
                    "captionrnn/dispatch.py does"
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
        if src.suffix in (".pyc", ".pyo", ".so") or src.name.endswith((".nbi", ".nbc")):
            continue
        target = dest / rel
        if src.is_dir():
            continue
        if src.suffix == ".py":
            text = src.read_text(encoding="utf-8")
            if _exclude_cli(rel, text):
                continue
            display = f"captionrnn/{rel.as_posix()}"
            text, regions = stub_source(text, display)
            report.regions.extend(regions)
            if rel.as_posix() == "backend.py":
                for name in ("def _validate(", BACKEND_READ, "BACKENDS ="):
                    if name not in text:
                        raise ReleaseError(
                            f"{display}: expected `{name}` there to switch the student edition "
                            "to the numpy backend; update BACKEND_PATCH in grading/release.py"
                        )
                # before the environment is read, so CAPTIONRNN_BACKEND is judged by the edition's
                # choices (a misspelt or 'numba' value warns and gives 'numpy')
                patch = "\n" + BACKEND_PATCH.strip("\n") + "\n\n"
                text = text.replace(BACKEND_READ, patch + BACKEND_READ, 1)
            _check_no_kernel_imports(display, text)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
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
    """Copy a notebook with every output, execution count and execution record removed (plain json,
    so that a release needs no Jupyter package)."""
    nb = json.loads(Path(src).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            cell.get("metadata", {}).pop("execution", None)
    Path(dest).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def normalize_code(line):
    """A code line without its comment and whitespace: how leaks are compared (:func:`leaks`)."""
    code = line.split("#", 1)[0] if "#" in line else line
    return re.sub(r"\s+", "", code)


# A solution line shorter than this, once normalised, is too generic to count as a leak.
MIN_LEAK = 12
COMPUTES = re.compile(r"[-+*/@]|np\.|\.sum\(|\.T\b")
# A line of only products and sums of named arrays (``dprev_c = dc * f``) is its own equation: the
# docs state it as mathematics, so it is not a secret.
EQUATION = re.compile(r"^\w+=\w+(\*\w+)?([+-]\w+(\*\w+)?)*$")
STRUCTURE = re.compile(
    r"^(for|if|elif|while|with|return|def|class|import|from|@)|=(cache|\w+\.shape)$"
)


def _secret(line):
    """The normalised line if it is a computation worth keeping secret, else None: long enough, and
    it computes something (``N, T, D = x.shape`` or ``for t in range(T):`` gives nothing away)."""
    n = normalize_code(line)
    if len(n) < MIN_LEAK or not COMPUTES.search(n) or STRUCTURE.search(n) or EQUATION.match(n):
        return None
    return n


def _code_lines(text, kernels_only=False):
    """The lines of a module outside its docstrings (only those of decorated functions, the
    compiled kernels, if ``kernels_only``)."""
    tree = ast.parse(text)
    skip = set()
    if kernels_only:
        keep = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.decorator_list:
                keep.update(range(node.lineno, node.end_lineno + 1))
        skip.update(set(range(1, len(text.splitlines()) + 1)) - keep)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    return [line for i, line in enumerate(text.splitlines(), 1) if i not in skip]


def solution_lines(regions, extra_sources=(), given=()):
    """The normalised secret lines of every region (and of ``extra_sources``, e.g. kernels.py),
    less those that also appear in ``given`` (sources the student edition ships: given code)."""
    lines = [line for r in regions for line in r.solution]
    lines += [line for text in extra_sources for line in _code_lines(text, kernels_only=True)]
    public = {normalize_code(line) for text in given for line in _code_lines(text)}
    return {n for n in map(_secret, lines) if n} - public


def _strip_leaking_tests(path, secret):
    """Remove from a test module every test function that writes out a solution line (a reference
    implementation used as the test's oracle). Returns the names removed."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    cut, names = set(), []
    for node in ast.parse(text).body:
        funcs = [node] if isinstance(node, ast.FunctionDef) else []
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            funcs = [n for n in node.body if isinstance(n, ast.FunctionDef)]
        for f in funcs:
            if not f.name.startswith("test"):
                continue
            first = min([f.lineno] + [d.lineno for d in f.decorator_list])
            span = range(first, f.end_lineno + 1)
            if any(_secret(lines[i - 1]) in secret for i in span):
                cut.update(span)
                names.append(f.name)
    if names:
        kept = [line for i, line in enumerate(lines, 1) if i not in cut]
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return names


def _text_lines(path):
    """The lines of one edition file as a student could read them (notebook cells included)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        nb = json.loads(text)
        return [
            line
            for cell in nb.get("cells", [])
            for line in "".join(cell.get("source", "")).splitlines()
        ] + text.splitlines()
    return text.splitlines()


def leaks(out, lines):
    """[(file, line number, line)] of every line in the edition ``out`` equal (normalised) to one of
    ``lines``. Comments count too: ``# dx = da @ Wx.T`` leaks as much as the code."""
    found = []
    for f in sorted(Path(out).rglob("*")):
        if not f.is_file() or "__pycache__" in f.parts or f.suffix in (".pyc", ".png", ".npz"):
            continue
        for i, line in enumerate(_text_lines(f), 1):
            n = re.sub(r"\s+", "", line.lstrip().lstrip("#>*-`"))
            if len(n) < MIN_LEAK:
                continue
            for cand in (n, normalize_code(line.lstrip().lstrip("#>*-`"))):
                if cand in lines:
                    found.append((f.relative_to(out).as_posix(), i, line.strip()))
                    break
    return found


def student_doc(text, lines):
    """The student edition of a markdown document: ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END
    SOLUTION -->`` blocks, and every code block holding a solution line (``lines``, normalised),
    become one sentence saying the code is the student's to write. The prose and equations stay."""
    out, block, in_marked = [], None, False
    for line in text.splitlines():
        if in_marked:
            if DOC_END.match(line):
                in_marked = False
                out.append(DOC_CUT)
            continue
        if DOC_BEGIN.match(line):
            in_marked = True
            continue
        if block is not None:
            block.append(line)
            if line.strip().startswith("```"):
                body = block[1:-1]
                cut = any(normalize_code(b) in lines for b in body)
                out.extend([DOC_CUT] if cut else block)
                block = None
            continue
        if line.strip().startswith("```"):
            block = [line]
            continue
        out.append(line)
    if in_marked or block is not None:
        raise ReleaseError("a <!-- BEGIN SOLUTION --> or a ``` code block is never closed")
    return "\n".join(out) + "\n"


MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s#]*)(#[^)\s]*)?\)")


def _unlink_missing(path, root):
    """Markdown links to files that are not in the edition become plain text; a list item that is
    only such a link is dropped."""
    text = path.read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        missing = [
            m
            for m in MD_LINK.finditer(line)
            if m.group(2)
            and "://" not in m.group(2)
            and not (path.parent / m.group(2)).resolve().exists()
        ]
        if not missing:
            out.append(line)
            continue
        if line.lstrip().startswith(("- ", "* ")) and line.lstrip()[2:].startswith("["):
            continue  # an index entry for a document that is not shipped
        for m in missing:
            line = line.replace(m.group(0), m.group(1))
        out.append(line)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


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
    """Import every module of the edition in a fresh interpreter; ReleaseError on failure."""
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


def _check_out(out, pkg, src):
    """Refuse an OUT that is inside, or contains, the reference being released."""
    target = Path(out).resolve()
    for protected in {pkg, src.parent if src and src.name == "_edition" else src} - {None}:
        protected = protected.resolve()
        if target == protected or target.is_relative_to(protected):
            raise ReleaseError(
                f"refusing to write into {out}: it is inside {protected}, which holds the "
                "reference being released; choose a folder outside it, e.g. "
                f"captionrnn release {protected.parent / 'student'}"
            )
        if protected.is_relative_to(target):
            raise ReleaseError(
                f"refusing to write into {out}: it contains {protected}, the reference being "
                "released; choose a folder outside it"
            )


def _is_instructor_test(path):
    """Tests of the instructor tooling or of the kernels (they import captionrnn.grading,
    captionrnn.kernels or numba at module level): their subject is not in the edition. A test
    module that imports them inside a test, after ``pytest.importorskip``, stays."""
    if path.name in EXCLUDE_TESTS:
        return True
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            if n.startswith(("captionrnn.grading", "captionrnn.kernels", "numba")):
                return True
    return False


def release(out, force=False, check=True, solutions=None):
    """Write the student edition of the installed/checkout captionrnn into ``out``.

    Refuses a non-empty ``out`` unless ``force`` (then its contents are replaced), and any ``out``
    inside the project or the package. ``solutions``: a JSON file to write the solution map to
    (outside ``out``; see :func:`fill`). Returns a :class:`ReleaseReport`. Raises ReleaseError
    with a one-line reason on any problem.
    """
    out = Path(out)
    pkg, src, where = source_tree()
    if src is None:
        raise ReleaseError(
            f"{where} has no copy of the notebooks, docs, tests and setup files a student edition "
            f"needs (it was not installed from captionrnn's own build). Fix: {REINSTALL}"
        )
    missing = [n for n in REQUIRED_SOURCES if not (src / n).exists()]
    if missing:
        raise ReleaseError(
            f"{where} lacks {', '.join(missing)}, which the student edition needs. Fix: {REINSTALL}"
        )
    _check_out(out, pkg, src)
    if solutions is not None:
        sol = Path(solutions).resolve()
        if sol.is_relative_to(out.resolve()):
            raise ReleaseError(f"--solutions {solutions} is inside {out}: students would get it")
    if out.exists() and not out.is_dir():
        raise ReleaseError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ReleaseError(
                f"{out} is not empty; choose an empty folder or pass --force to replace its "
                "contents"
            )
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    report = ReleaseReport(out, source=where)
    _copy_package(pkg, out / "captionrnn", report)
    kernels = [p.read_text(encoding="utf-8") for p in sorted((pkg / "kernels").glob("*.py"))]
    given = [p.read_text(encoding="utf-8") for p in report.files if p.suffix == ".py"]
    secret = solution_lines(report.regions, kernels, given)

    for name in ("pyproject.toml", "setup.cfg", "LICENSE"):
        if (src / name).is_file():
            text = (src / name).read_text(encoding="utf-8")
            (out / name).write_text(
                _student_setup_cfg(text) if name == "setup.cfg" else text, encoding="utf-8"
            )
    (out / ".gitignore").write_text(GITIGNORE, encoding="utf-8")

    (out / "docs").mkdir()
    for doc in sorted((src / "docs").glob("*.md")):
        if doc.name not in NOT_SHIPPED_DOCS:
            text = student_doc(doc.read_text(encoding="utf-8"), secret)
            (out / "docs" / doc.name).write_text(text, encoding="utf-8")
    if (src / "docs" / "figures").is_dir():  # the derivations' figures (no code in them)
        shutil.copytree(src / "docs" / "figures", out / "docs" / "figures")

    shutil.copytree(
        src / "tests",
        out / "tests",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis"),
    )
    dropped = sorted(p.name for p in (out / "tests").glob("*.py") if _is_instructor_test(p))
    for name in dropped:
        (out / "tests" / name).unlink()
    for test in sorted((out / "tests").glob("*.py")):
        names = _strip_leaking_tests(test, secret)
        if names:
            report.notes.append(
                f"tests/{test.name}: left out {', '.join(names)} (their oracle is the solution)"
            )
    conftest = out / "tests" / "conftest.py"
    head = conftest.read_text(encoding="utf-8") if conftest.is_file() else '"""Fixtures."""\n'
    if not re.search(r"^import pytest$", head, re.M):
        head = "import pytest\n" + head
    conftest.write_text(head.rstrip("\n") + "\n" + STUDENT_CONFTEST, encoding="utf-8")

    (out / "assignments").mkdir()
    for nb in sorted((src / "assignments").glob("*")):
        if nb.suffix == ".ipynb":
            _clear_notebook(nb, out / "assignments" / nb.name)
            report.notebooks.append(nb.name)
        elif nb.suffix == ".md":
            shutil.copy2(nb, out / "assignments" / nb.name)
    if not report.notebooks:
        report.notes.append("assignments/ has no notebooks")
    (out / "README.md").write_text(README.format(order=_order(report.regions)), encoding="utf-8")
    for md in [
        *out.glob("*.md"),
        *(out / "docs").glob("*.md"),
        *(out / "assignments").glob("*.md"),
    ]:
        _unlink_missing(md, out)

    found = leaks(out, secret)
    if found:
        raise ReleaseError(
            "solution code would leave in the student edition (mark it, or rewrite it as an "
            "equation):\n" + "\n".join(f"  {f}:{i}: {line}" for f, i, line in found[:20])
        )
    if solutions is not None:
        Path(solutions).write_text(json.dumps(report.solution_map(), indent=1), encoding="utf-8")
    if check:
        check_imports(out)
    return report


def fill(out, solution_map):
    """Put the reference back into a student edition: each stub of ``solution_map`` (from
    :meth:`ReleaseReport.solution_map` or ``captionrnn release --solutions``) becomes its solution.
    For instructors and the end-to-end test; returns the number of regions filled."""
    n = 0
    for rel, regions in solution_map.items():
        path = Path(out) / rel
        text = path.read_text(encoding="utf-8")
        for r in regions:
            stub, solution = "\n".join(r["stub"]) + "\n", "\n".join(r["solution"]) + "\n"
            if stub not in text:
                raise ReleaseError(f"{rel}: the stub of {r['function']} is not there any more")
            text = text.replace(stub, solution, 1)
            n += 1
        path.write_text(text, encoding="utf-8")
    return n
