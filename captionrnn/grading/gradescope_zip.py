"""Build Gradescope's autograder.zip (``captionrnn autograder``); see docs/grading.md.

Layout of the zip (Gradescope unpacks it in /autograder/source)::

    setup.sh          installs Python 3 and NumPy (once, when Gradescope builds the image)
    run_autograder    per submission: the reference made root-only, then
                      python -m captionrnn.grading.gradescope
    captionrnn/       the reference package, grader included

``run_autograder`` honours ``CAPTIONRNN_AUTOGRADER_ROOT`` (default /autograder) and
``CAPTIONRNN_PYTHON`` (default python3) so that tests can run it in a simulated layout.
"""

import os
import zipfile
from pathlib import Path

import numpy as np

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
apt-get update -q
apt-get install -y -q python3 python3-pip
python3 -m pip install --break-system-packages "numpy>={numpy}" 2>/dev/null \\
  || python3 -m pip install "numpy>={numpy}"
chmod -R go-rwx /autograder/source
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this as root for every submission: /autograder/submission in,
# /autograder/results/results.json out. The student's code runs as an unprivileged user.
set -uo pipefail
ROOT="${CAPTIONRNN_AUTOGRADER_ROOT:-/autograder}"
PY="${CAPTIONRNN_PYTHON:-python3}"
chmod -R go-rwx "$ROOT/source"   # the reference: root only
chmod 700 "$ROOT"/results 2>/dev/null || mkdir -m 700 -p "$ROOT/results"
cd "$ROOT/source"
PYTHONPATH="$ROOT/source" PYTHONNOUSERSITE=1 "$PY" -m captionrnn.grading.gradescope --root "$ROOT"
"""

IGNORE_DIRS = {"__pycache__", ".ipynb_checkpoints"}


def build(out):
    """Write the zip to ``out``; returns {'files': count, 'version': captionrnn version}."""
    import captionrnn

    pkg = Path(captionrnn.__file__).resolve().parent
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give the path of the zip to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (
            ("setup.sh", SETUP_SH.format(numpy=".".join(np.__version__.split(".")[:2]))),
            ("run_autograder", RUN_AUTOGRADER),
        ):
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
            count += 1
        for root, dirs, files in os.walk(pkg):
            dirs[:] = sorted(d for d in dirs if d not in IGNORE_DIRS)
            for f in sorted(files):
                if f.endswith((".pyc", ".so")):
                    continue
                path = Path(root) / f
                zf.write(path, "captionrnn/" + path.relative_to(pkg).as_posix())
                count += 1
    return {"files": count, "version": captionrnn.__version__}
