"""``captionrnn handin``: zip the code that is graded, and nothing else, for upload.

    captionrnn handin            # handin.zip from ./captionrnn (or the imported package)
    captionrnn handin --out alice.zip

The zip holds ``captionrnn/**/*.py`` (and ``py.typed``): no virtual environment, caches, data,
figures or notebooks, so it is a few hundred kB. ``captionrnn grade`` accepts it as it is. The
command also lists the functions that still raise "not implemented yet", so nothing is handed in
unfinished by accident.
"""

import re
import sys
import zipfile
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", "_edition", "grading"}
STUB = re.compile(r"raise NotImplementedError\(['\"](\S+): not implemented yet")


def find_package(start=None):
    """The captionrnn package to hand in: ./captionrnn if it is there, else the imported one."""
    here = Path(start or ".").resolve() / "captionrnn"
    if (here / "__init__.py").is_file():
        return here
    import captionrnn

    return Path(captionrnn.__file__).resolve().parent


def package_files(pkg):
    """The files that are graded: every .py (and py.typed) under the package, caches excluded."""
    return sorted(
        p
        for p in pkg.rglob("*")
        if p.is_file()
        and (p.suffix == ".py" or p.name == "py.typed")
        and not SKIP_DIRS.intersection(p.relative_to(pkg).parts)
    )


def handin(out="handin.zip", start=None):
    """Write the zip; return (path, number of files, size in bytes, unfinished function names)."""
    pkg = find_package(start)
    files = package_files(pkg)
    out = Path(out)
    unfinished = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            text = f.read_text(encoding="utf-8")
            unfinished += STUB.findall(text)
            zf.writestr(f"captionrnn/{f.relative_to(pkg).as_posix()}", text)
    return out, len(files), out.stat().st_size, unfinished


def _run(args):
    out, n, size, unfinished = handin(args.out, args.dir)
    print(f"wrote {out}: {n} files of captionrnn/, {size / 1024:.0f} kB")
    if unfinished:
        names = ", ".join(dict.fromkeys(unfinished))
        print(f"still not implemented ({len(unfinished)} places): {names}", file=sys.stderr)
    print("upload this zip; it holds only the code that is graded")
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "handin",
        help="zip your captionrnn package (only what is graded) for upload",
        description="Write a zip of the captionrnn package's .py files (no virtual environment, "
        "caches, data or notebooks) that `captionrnn grade` accepts.",
    )
    p.add_argument("--out", default="handin.zip", metavar="ZIP", help="default: handin.zip")
    p.add_argument(
        "--dir",
        default=None,
        metavar="FOLDER",
        help="the folder holding captionrnn/ (default: the current one, else the imported package)",
    )
    p.set_defaults(func=_run)
