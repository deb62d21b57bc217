"""``captionrnn cs231n-package DIR``: write a ``cs231n`` package that re-exports captionrnn.

    captionrnn cs231n-package assignment3/          # writes assignment3/cs231n/
    cd assignment3 && jupyter notebook RNN_Captioning.ipynb

CS231n's assignment 3 notebooks import ``cs231n.rnn_layers``, ``cs231n.classifiers.rnn``,
``cs231n.captioning_solver``, ``cs231n.coco_utils``, ``cs231n.image_utils`` and
``cs231n.gradient_check``; the package written here provides each of them (plus ``layers`` and
``optim``) by importing captionrnn's code, so the notebooks run unchanged. The files come from
``captionrnn/cs231n_template/``; see docs/cs231n.md.
"""

import shutil
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "cs231n_template"
PACKAGE_NAME = "cs231n"


def template_files():
    """Paths of the template files, relative to the template folder (no caches)."""
    return sorted(
        p.relative_to(TEMPLATE)
        for p in TEMPLATE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def write_cs231n_package(out_dir, force=False):
    """Write ``out_dir/cs231n/`` (the re-export package) and return its path.

    Files already there with other contents are left alone and reported in a ValueError unless
    ``force``; anything else in the folder (e.g. the downloaded ``datasets/coco_captioning``) is
    never touched.
    """
    package = Path(out_dir) / PACKAGE_NAME
    files = template_files()
    clash = [
        str(package / rel)
        for rel in files
        if (package / rel).exists()
        and (package / rel).read_bytes() != (TEMPLATE / rel).read_bytes()
    ]
    if clash and not force:
        raise ValueError(
            f"{package} already holds different versions of {len(clash)} file(s) "
            f"({', '.join(clash[:4])}{', ...' if len(clash) > 4 else ''}); they may be your own "
            "work: move them away, choose another DIR, or pass --force to replace them"
        )
    for rel in files:
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TEMPLATE / rel, package / rel)  # keeps get_datasets.sh executable
    return package


def _run(args):
    from captionrnn.data.coco import DatasetFileError, find_coco_dir

    try:
        package = write_cs231n_package(args.dir, force=args.force)
    except ValueError as e:
        print(f"captionrnn cs231n-package: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {package.resolve()}/ ({len(template_files())} files re-exporting captionrnn)")
    try:
        print(f"COCO data: {find_coco_dir(package_dir=package)}")
    except DatasetFileError as e:
        print(e)
    print(f"open the course's notebooks from {Path(args.dir).resolve()}, e.g.:")
    print(f"  cd {args.dir} && jupyter notebook RNN_Captioning.ipynb")
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "cs231n-package",
        help="write a cs231n package so CS231n's assignment 3 notebooks run on captionrnn",
        description="Write DIR/cs231n/, a package whose modules (rnn_layers, classifiers.rnn, "
        "captioning_solver, coco_utils, image_utils, gradient_check, layers, optim) re-export "
        "captionrnn, so CS231n's RNN_Captioning.ipynb and LSTM_Captioning.ipynb run unchanged "
        "from DIR. Existing files with other contents are kept unless --force. See docs/cs231n.md.",
    )
    p.add_argument(
        "dir", metavar="DIR", help="folder of the course's notebooks (created if missing)"
    )
    p.add_argument(
        "--force", action="store_true", help="replace cs231n/ files that differ from the template"
    )
    p.set_defaults(func=_run)
