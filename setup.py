"""Build hook: a built wheel carries what ``captionrnn release`` needs, as ``captionrnn/_edition/``.

All metadata lives in setup.cfg. A plain (non-editable) ``pip install .`` only installs the
package, yet ``captionrnn release OUT`` must write a whole student edition: the notebooks, the docs,
the tests and the setup files. This hook copies them from the checkout (or from the sdist, see
MANIFEST.in) into the package's build folder, where
:func:`captionrnn.grading.release.source_tree` finds them. Editable installs skip it: there the
checkout itself is next to the package.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Keep in step with captionrnn.grading.release.EDITION_SOURCES.
EDITION_SOURCES = ("assignments", "docs", "tests", "setup.cfg", "pyproject.toml", "LICENSE")
IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis"
)


class BuildPyWithEdition(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "captionrnn" / "_edition"
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for name in EDITION_SOURCES:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, dest / name, ignore=IGNORE)
            elif src.is_file():
                shutil.copy2(src, dest / name)


setup(cmdclass={"build_py": BuildPyWithEdition})
