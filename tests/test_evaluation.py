"""captionrnn.evaluation: references per image, decoding a split, the solver's per-epoch metrics."""

import numpy as np
import pytest

from captionrnn.data import load_coco_data
from captionrnn.data.shapes import build_shapes
from captionrnn.evaluation import (
    caption_metrics,
    evaluate_model,
    feature_key,
    split_features,
    split_references,
)
from captionrnn.model import CaptioningRNN
from captionrnn.solver import CaptioningSolver


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes") / "tiny"
    build_shapes(out, num_train=30, num_val=10, num_test=10, seed=5, write_png=False, verbose=False)
    return load_coco_data(out)


def test_references_group_the_five_captions_of_each_image(data):
    refs = split_references(data, "val")
    assert sorted(refs) == list(range(10)) and all(len(r) == 5 for r in refs.values())
    assert all(
        "<START>" not in s and "<END>" not in s and "<NULL>" not in s
        for r in refs.values()
        for s in r
    )


def test_feature_key_follows_the_cell(data):
    lstm = CaptioningRNN(data["word_to_idx"], input_dim=512, cell_type="lstm", seed=0)
    att = CaptioningRNN(data["word_to_idx"], input_dim=32, cell_type="attention", seed=0)
    assert feature_key(lstm.cell_type, "val") == "val_features"
    assert feature_key(att.cell_type, "val") == "val_spatial_features"
    pooled_only = {k: v for k, v in data.items() if "spatial" not in k}
    with pytest.raises(ValueError, match="needs spatial features"):
        split_features(att.cell_type, pooled_only, "val")
    with pytest.raises(ValueError, match="needs spatial features"):
        CaptioningSolver(att, pooled_only, verbose=False)


def test_evaluate_model_scores_a_fixed_subset(data):
    model = CaptioningRNN(
        data["word_to_idx"], input_dim=512, hidden_dim=16, wordvec_dim=8, cell_type="gru", seed=0
    )
    m1, h1, r1 = evaluate_model(model, data, "val", max_images=4, seed=1)
    m2, h2, _ = evaluate_model(model, data, "val", max_images=4, seed=1)
    assert m1 == m2 and list(h1) == list(h2) and len(h1) == 4 and set(h1) == set(r1)
    assert set(m1) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"}
    _, hb, _ = evaluate_model(model, data, "val", decode="beam:2", max_images=4, seed=1)
    assert set(hb) == set(h1)


def test_solver_records_metrics_and_keeps_best_by_cider(data):
    model = CaptioningRNN(
        data["word_to_idx"], input_dim=512, hidden_dim=16, wordvec_dim=8, cell_type="rnn", seed=0
    )
    solver = CaptioningSolver(
        model,
        data,
        num_epochs=3,
        batch_size=50,
        verbose=False,
        seed=0,
        optim_config={"learning_rate": 1e-2},
        eval_fn=caption_metrics(max_images=5),
        best_by="CIDEr",
    )
    solver.train()
    cider = solver.metric_history["CIDEr"]
    assert len(cider) == 3 and len(solver.metric_history["Bleu_4"]) == 3
    assert solver.best_epoch == 1 + int(np.argmax(cider)) and solver.best_score == max(cider)


def test_reader_loads_a_folders_pixels_only_when_asked(data, tmp_path):
    assert "val_images" not in data  # the fixture read the folder with images=False (the default)
    out = tmp_path / "tiny"
    build_shapes(out, num_train=5, num_val=3, num_test=2, seed=1, write_png=False, verbose=False)
    full = load_coco_data(out, images=True)
    assert full["val_images"].shape == (3, 64, 64, 3) and full["val_images"].dtype == np.uint8


def test_attention_grounding_against_chance():
    """A map on the named object scores 1 / chance; a uniform map scores chance (ratio 1)."""
    from captionrnn.evaluation import attention_grounding, object_cells

    objects = [
        {"shape": "circle", "colour": "red", "size": "small", "bbox": [0, 0, 10, 10]},
        {"shape": "square", "colour": "blue", "size": "large", "bbox": [40, 40, 60, 60]},
    ]
    idx_to_word = ["<NULL>", "<START>", "<END>", "a", "red", "circle", "blue"]
    captions = np.array([[3, 4, 5, 2]])  # "a red circle <END>"
    cells = object_cells(objects[0], 8)
    assert cells.sum() == 4 and cells[:2, :2].all()  # 10 px over 8-px cells: 2 x 2 cells
    on_object = np.zeros((1, 4, 8, 8))
    on_object[0, :, 0, 0] = 1.0
    g = attention_grounding(captions, on_object, [objects], idx_to_word, end=2)
    assert g["words"] == 2 and g["share"] == 1.0 and g["ratio"] == pytest.approx(16.0)
    uniform = np.full((1, 4, 8, 8), 1 / 64)
    g = attention_grounding(captions, uniform, [objects], idx_to_word, end=2)
    assert g["ratio"] == pytest.approx(1.0) and g["above"] == 0.0
    # "blue" names the square; words naming no object or two objects are not counted
    g = attention_grounding(np.array([[6, 2, 0, 0]]), uniform, [objects], idx_to_word, end=2)
    assert g["words"] == 1 and g["chance"] == pytest.approx(object_cells(objects[1], 8).mean())
