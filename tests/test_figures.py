"""docs/make_figures.py redraws the checked-in figures of docs/ byte for byte: they cannot drift."""

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib not installed")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "docs" / "make_figures.py"
CHECKED_IN = REPO / "docs" / "figures"
EXPECTED = {"rnn_unrolled.svg", "lstm_cell.svg", "attention_flow.svg", "attention_additive.svg"}
IN_DOCS = {"rnn_unrolled.svg", "lstm_cell.svg", "attention_flow.svg"}
SVG_NS = "{http://www.w3.org/2000/svg}"


def draw(out):
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True
    )
    return {p.name: p.read_bytes() for p in sorted(Path(out).glob("*.svg"))}


def made_by(svg):
    """The Matplotlib version recorded in an SVG's metadata (the bytes depend on it)."""
    m = re.search(rb"Matplotlib v([\w.+-]+)", svg)
    return m.group(1).decode() if m else None


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    return draw(tmp_path_factory.mktemp("figures"))


def test_script_draws_every_figure_as_valid_svg(drawn):
    assert set(drawn) == EXPECTED
    for name, svg in drawn.items():
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG_NS}svg", name
        assert float(root.get("width").removesuffix("pt")) > 300, name  # a real drawing, not empty
        assert len(root.findall(f".//{SVG_NS}path")) > 50, name
        assert b"<dc:date>" not in svg, f"{name} records a date: the bytes change on every run"


def test_figures_referenced_by_the_docs_are_checked_in():
    docs = (REPO / "docs" / "bptt.md").read_text() + (REPO / "docs" / "attention.md").read_text()
    used = set(re.findall(r"\]\(figures/([\w-]+\.svg)\)", docs))
    assert used >= IN_DOCS
    assert used <= EXPECTED, f"docs use figures the script does not draw: {used - EXPECTED}"
    assert {p.name for p in CHECKED_IN.glob("*.svg")} == EXPECTED


def test_checked_in_figures_equal_a_fresh_run(drawn, tmp_path):
    checked_in = {name: (CHECKED_IN / name).read_bytes() for name in EXPECTED}
    version = made_by(next(iter(checked_in.values())))
    if version == matplotlib.__version__:
        stale = [name for name in EXPECTED if drawn[name] != checked_in[name]]
        assert not stale, f"{stale} differ from a fresh run: run python docs/make_figures.py"
    else:
        # Another Matplotlib lays paths out differently; the output must still be reproducible.
        again = draw(tmp_path)
        assert again == drawn, "two runs of docs/make_figures.py gave different bytes"
        pytest.skip(
            f"docs/figures/ was drawn with Matplotlib {version}, this is {matplotlib.__version__}: "
            "checked that two runs agree byte for byte, not that they equal the checked-in files"
        )
