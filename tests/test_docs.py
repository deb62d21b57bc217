"""Every ``docs/<file>.md#<anchor>`` that a docstring, a notebook or a document points to exists."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REF = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")


def github_anchor(heading):
    """GitHub's slug of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_$\\]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc):
    lines = (REPO / "docs" / doc).read_text(encoding="utf-8").splitlines()
    return {github_anchor(m.group(1)) for m in map(re.compile(r"^#+\s+(.*)$").match, lines) if m}


def references():
    files = (
        list((REPO / "captionrnn").rglob("*.py"))
        + list((REPO / "assignments").glob("*.ipynb"))
        + list((REPO / "docs").glob("*.md"))
        + [REPO / "README.md"]
    )
    refs = set()
    for f in files:
        for doc, anchor in REF.findall(f.read_text(encoding="utf-8")):
            refs.add((f.relative_to(REPO).as_posix(), doc, anchor))
    return sorted(refs)


def test_there_are_references_to_check():
    assert len(references()) > 20


@pytest.mark.parametrize("source,doc,anchor", references())
def test_reference_resolves(source, doc, anchor):
    assert (REPO / "docs" / doc).is_file(), f"{source} points to missing docs/{doc}"
    assert anchor in anchors(doc), (
        f"{source} points to docs/{doc}#{anchor}, which has no such heading"
    )


def test_every_backward_points_to_its_derivation():
    import inspect

    from captionrnn import attention, rnn_layers

    funcs = [getattr(rnn_layers, n) for n in rnn_layers.__all__ if n.endswith("_backward")]
    funcs += [f for n, f in vars(attention).items() if n.endswith("_backward") and callable(f)]
    missing = [f.__name__ for f in funcs if not REF.search(inspect.getdoc(f) or "")]
    assert not missing, f"backward passes without a docs/...#section reference: {missing}"


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """A student edition (release is in captionrnn.grading, which only the reference has)."""
    grading = pytest.importorskip("captionrnn.grading.release", reason="the reference only")
    out = tmp_path_factory.mktemp("docs-edition") / "student"
    grading.release(out, check=False)
    return out


def test_every_hint_and_link_in_the_student_edition_resolves(edition):
    """The stubs' hints ("See docs/bptt.md#...") and every docs link of the edition point to a
    section that exists in the edition's own docs (instructors.md and grading.md are not there)."""
    heading = re.compile(r"^#+\s+(.*)$")
    available = {
        doc.name: {
            github_anchor(m.group(1)) for m in map(heading.match, doc.read_text().splitlines()) if m
        }
        for doc in (edition / "docs").glob("*.md")
    }
    files = [*(edition / "captionrnn").rglob("*.py"), *(edition / "assignments").glob("*")]
    files += [*(edition / "docs").glob("*.md"), edition / "README.md"]
    hints, broken = 0, []
    for f in files:
        text = f.read_text(encoding="utf-8")
        hints += len(re.findall(r"not implemented yet\. TODO: .*?See docs/", text))
        for doc, anchor in REF.findall(text):
            if anchor not in available.get(doc, ()):
                broken.append(f"{f.relative_to(edition)} -> docs/{doc}#{anchor}")
    # one per layer function (the model's three stubs point at the notebook, not a derivation)
    assert hints >= 25, "the stubs' hints should name their docs section"
    assert not broken, "links to sections missing from the student edition:\n" + "\n".join(broken)
