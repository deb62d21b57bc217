"""captionrnn.threads: the BLAS thread count chosen at the library's entry points; its override."""

import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from captionrnn import threads


def _blas_threads():
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    threads.set_threads(None)
    yield
    threads.set_threads(None)


def test_choice_is_between_one_and_the_available_cores():
    assert 1 <= threads.choose() <= threads.available_cores()
    assert threads.others_load(0.01) >= 0.0


def test_limit_sets_then_restores_the_blas_threads():
    before = _blas_threads()
    with threads.limit(1):
        assert _blas_threads() == {1}
        np.ones((64, 64)) @ np.ones((64, 64))
    assert _blas_threads() == before


def test_an_explicit_count_holds_for_nested_automatic_blocks():
    with threads.limit(1):
        with threads.limit():
            assert _blas_threads() == {1}


def test_override_by_function_and_environment(monkeypatch):
    threads.set_threads(1)
    assert threads.choose() == 1
    with threads.limit():
        assert _blas_threads() == {1}
    threads.set_threads(None)
    monkeypatch.setenv(threads.ENV, "1")
    assert threads.choose() == 1


@pytest.mark.parametrize("bad", [0, -2, "two", 1.5])
def test_bad_override_names_the_setting_and_the_fix(bad, monkeypatch):
    with pytest.raises(ValueError, match=r"set_threads\(n\) must be a positive whole number"):
        threads.set_threads(bad)
    monkeypatch.setenv(threads.ENV, str(bad))
    with pytest.raises(
        ValueError, match="CAPTIONRNN_THREADS must be a positive whole number.*unset"
    ):
        threads.choose()


def test_decorated_entry_points_restore_the_count():
    from captionrnn.decoding import greedy
    from captionrnn.model import CaptioningRNN

    vocab = {w: i for i, w in enumerate(["<NULL>", "<START>", "<END>", "a"])}
    model = CaptioningRNN(vocab, input_dim=3, wordvec_dim=2, hidden_dim=4, seed=0)
    before = _blas_threads()
    greedy(model, np.zeros((2, 3), dtype=model.dtype), max_length=3)
    assert _blas_threads() == before


def test_one_busy_sample_holds_one_thread_until_it_ages_out(monkeypatch):
    """Under a bursty load a lull must not bring back the second thread (too many threads on a
    busy machine cost up to 10x, one too few on a quiet one ~1.5x)."""
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    clock, loads = [1000.0], iter([1.5, 0.0, 0.0])
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(threads, "others_load", lambda: next(loads))
    monkeypatch.setattr(threads, "_samples", [])
    assert threads.choose() == 1  # busy
    clock[0] += threads._REUSE_SECONDS + 1
    assert threads.choose() == 1  # a lull: the busy sample is still remembered
    clock[0] += threads._MEMORY_SECONDS
    assert threads.choose() == 2  # the busy sample has aged out, the idle one before it counts
    clock[0] += 1
    assert threads.choose() == 2  # reused within _REUSE_SECONDS, no new sample


def test_blas_threads_reports_the_enclosing_block():
    with threads.limit(1):
        assert threads.blas_threads() == 1
        with threads.limit():  # an automatic block inside an explicit one keeps its count
            assert threads.blas_threads() == 1
    with threads.limit(2):
        assert threads.blas_threads() == 2
    assert threads.blas_threads() == max(_blas_threads())


def test_blas_libraries_are_looked_up_again_after_an_import(monkeypatch):
    # scipy, imported after numpy, brings its own OpenBLAS: limit() must size it too
    import types

    first = threads._blas()
    assert threads._blas() is first  # no import since: the same controllers, no rescan
    monkeypatch.setitem(sys.modules, "_captionrnn_test_module", types.ModuleType("m"))
    assert threads._blas() is not first
