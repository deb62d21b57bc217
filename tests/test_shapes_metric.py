"""Shapes captions checked against their scenes: caption correctness and object recall.

The grammar's reference captions must all be correct; each kind of planted error must be caught.
"""

import numpy as np
import pytest

from captionrnn.data.shapes import build_shapes, generate_split, load_shapes
from captionrnn.evaluation import (
    check_shapes_caption,
    evaluate_model,
    parse_shapes_caption,
    shapes_caption_scores,
)
from captionrnn.model import CaptioningRNN


def obj(size, colour, shape):
    return {"size": size, "colour": colour, "shape": shape}


SCENE = [obj("large", "red", "circle"), obj("small", "blue", "square")]
ONE = [obj("small", "green", "triangle")]
TWO_RED = [
    obj("large", "red", "circle"),
    obj("small", "red", "cross"),
    obj("small", "blue", "diamond"),
]


@pytest.fixture(scope="module")
def references():
    """2,000 generated scenes with their five reference captions each."""
    _, annotations, captions = generate_split(2000, np.random.default_rng(7))
    return annotations, captions


def test_every_reference_caption_is_correct(references):
    annotations, captions = references
    for objects, caps in zip(annotations, captions):
        for c in caps:
            result = check_shapes_caption(c, objects)
            assert result["correct"], (c, objects, result["errors"])


def test_reference_captions_name_every_object(references):
    """Every phrasing of the grammar names every object of its scene (directly or in a count)."""
    annotations, captions = references
    for objects, caps in zip(annotations, captions):
        for c in caps:
            assert check_shapes_caption(c, objects)["recall"] == 1.0, (c, objects)
    scores = shapes_caption_scores({i: caps[0] for i, caps in enumerate(captions)}, annotations)
    assert scores == {"correct": 1.0, "object_recall": 1.0, "images": len(captions)}


@pytest.mark.parametrize(
    "caption, scene, recall",
    [
        ("a large red circle to the left of a small blue square", SCENE, 1.0),
        ("a red circle", SCENE, 0.5),
        ("there is a small green triangle in the top left", ONE, 1.0),
        ("a single small triangle that is green", ONE, 1.0),
        ("two red shapes and a blue diamond", TWO_RED, 1.0),
        ("two shapes a red circle and a blue square", SCENE, 1.0),
        ("the larger shape is a red circle", SCENE, 0.5),
    ],
)
def test_true_captions(caption, scene, recall):
    result = check_shapes_caption(caption, scene)
    assert result["correct"] and result["errors"] == [], result
    assert result["recall"] == pytest.approx(recall)


@pytest.mark.parametrize(
    "caption, scene, error",
    [
        ("a large green circle to the left of a small blue square", SCENE, "no large green circle"),
        ("a large red diamond to the left of a small blue square", SCENE, "no large red diamond"),
        ("a small red circle to the left of a small blue square", SCENE, "no small red circle"),
        ("three red shapes and a blue diamond", TWO_RED, "says 3 red"),
        ("two shapes a red circle and a blue square", TWO_RED, "says 2 objects"),
        ("a red circle and a blue square and a yellow cross", SCENE, "no yellow cross"),
        ("a red circle is above a red circle", SCENE, "more often than the scene has one"),
        ("there are two shapes", SCENE, "mentions no object"),
        ("", ONE, "mentions no object"),
        ("two circles one red and one blue", SCENE, "says 2 circle"),
    ],
    ids=[
        "colour",
        "shape",
        "size",
        "count",
        "total-count",
        "hallucinated",
        "twice",
        "no-object",
        "empty",
        "plural-count",
    ],
)
def test_planted_errors_are_caught(caption, scene, error):
    result = check_shapes_caption(caption, scene)
    assert not result["correct"]
    assert any(error in e for e in result["errors"]), result["errors"]


def test_parse_reads_counts_and_plural_colours():
    mentions, counts = parse_shapes_caption("two circles one red and one blue")
    assert counts == [(2, {"shape": "circle"})]
    assert mentions == [
        {"colour": "red", "shape": "circle"},
        {"colour": "blue", "shape": "circle"},
    ]
    assert parse_shapes_caption("two large shapes a red circle and a blue square")[1] == [
        (2, {"size": "large"})
    ]


def test_scores_on_planted_errors_count_right():
    hyps = {
        0: "a large red circle and a small blue square",
        1: "a purple cross",
        2: "a green triangle",
    }
    scores = shapes_caption_scores(hyps, [SCENE, SCENE, ONE])
    assert scores == {
        "correct": pytest.approx(2 / 3),
        "object_recall": pytest.approx(2 / 3),
        "images": 3,
    }


def test_annotations_are_on_disk_and_evaluate_reports_the_metric(tmp_path):
    """The dataset folder keeps per-image scene annotations; evaluate_model adds the two scores."""
    out = build_shapes(
        tmp_path / "s", num_train=20, num_val=6, num_test=0, seed=3, write_png=False, verbose=False
    )
    assert (out / "val2014_annotations.json").is_file()
    data = load_shapes(
        num_train=20, num_val=6, num_test=0, seed=3, cache_dir=tmp_path, verbose=False
    )
    assert len(data["val_annotations"]) == 6
    assert all(
        {"shape", "colour", "size", "bbox"} <= set(o) for a in data["val_annotations"] for o in a
    )
    model = CaptioningRNN(
        data["word_to_idx"], input_dim=data["train_features"].shape[1], hidden_dim=8, seed=0
    )
    metrics, hyps, _ = evaluate_model(model, data, "val", max_length=8)
    assert 0.0 <= metrics["correct"] <= 1.0 and 0.0 <= metrics["object_recall"] <= 1.0
    direct = shapes_caption_scores(hyps, data["val_annotations"])
    assert metrics["correct"] == direct["correct"]
