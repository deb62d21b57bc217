"""captionrnn.image_utils: CS231n's image_utils interface, offline (local servers and files)."""

import http.server
import inspect
import socket
import threading

import numpy as np
import pytest
from PIL import Image

from captionrnn import image_utils
from captionrnn.image_utils import (
    SQUEEZENET_MEAN,
    SQUEEZENET_STD,
    blur_image,
    deprocess_image,
    image_from_url,
    load_image,
    preprocess_image,
)


def test_signatures_match_cs231n():
    params = {
        f: list(inspect.signature(getattr(image_utils, f)).parameters)
        for f in (
            "image_from_url",
            "load_image",
            "preprocess_image",
            "deprocess_image",
            "blur_image",
        )
    }
    assert params["image_from_url"][0] == "url"
    assert params["load_image"] == ["filename", "size"]
    assert inspect.signature(load_image).parameters["size"].default is None
    assert params["preprocess_image"] == ["img"]
    assert params["deprocess_image"] == ["img", "rescale"]
    assert inspect.signature(deprocess_image).parameters["rescale"].default is False
    assert params["blur_image"] == ["X"]
    np.testing.assert_array_equal(SQUEEZENET_MEAN, np.float32([0.485, 0.456, 0.406]))
    np.testing.assert_array_equal(SQUEEZENET_STD, np.float32([0.229, 0.224, 0.225]))


@pytest.fixture
def png(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (the http.server API)
        if self.path == "/img.png":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(png):
    _Handler.body = png[0].read_bytes()
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_image_from_url_reads_http_file_urls_and_paths(server, png):
    path, pixels = png
    for url in (f"{server}/img.png", path.as_uri(), str(path)):
        img = image_from_url(url)
        assert img.dtype == np.uint8 and img.shape == (6, 10, 3)
        np.testing.assert_array_equal(img, pixels)  # PNG is lossless


def test_image_from_url_returns_none_with_one_line(server, tmp_path, capsys):
    assert image_from_url(f"{server}/missing.jpg") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "HTTP Error: 404" in out and "missing.jpg" in out

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert image_from_url(f"http://127.0.0.1:{port}/x.jpg") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("URL Error:")

    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    for url in (str(tmp_path / "absent.png"), str(not_image), "http://[bad"):
        assert image_from_url(url) is None
        assert capsys.readouterr().out.count("\n") == 1


def test_image_from_url_gives_up_on_a_silent_server(capsys):
    """A server that accepts the connection and never answers must not hang the notebook."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow.jpg"
        assert image_from_url(url, timeout=0.3) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "slow.jpg" in out


def test_load_image_resizes_the_shorter_side(png):
    path, pixels = png
    np.testing.assert_array_equal(load_image(path), pixels)
    small = load_image(path, size=3)  # 6 x 10 -> 3 x 5, aspect kept
    assert small.shape == (3, 5, 3) and small.dtype == np.uint8
    assert load_image(str(path), size=12).shape == (12, 20, 3)
    with pytest.raises(ValueError, match="size must be a positive"):
        load_image(path, size=0)


def test_preprocess_and_deprocess_are_inverse():
    img = np.random.default_rng(1).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    x = preprocess_image(img)
    assert x.dtype == np.float32 and x.shape == img.shape
    # by hand, channel 0 of one pixel
    expected = (img[0, 0, 0, 0] / 255.0 - 0.485) / 0.229
    assert abs(x[0, 0, 0, 0] - expected) < 1e-5
    back = deprocess_image(x)
    assert back.dtype == np.uint8
    # float32 round trip then truncation to uint8: off by at most one level
    assert np.abs(back.astype(int) - img.astype(int)).max() <= 1
    stretched = deprocess_image(np.linspace(-5, 5, 30).reshape(2, 5, 3), rescale=True)
    assert stretched.min() == 0 and stretched.max() == 255


def test_blur_image_against_scipy():
    from scipy.ndimage import correlate

    X = np.random.default_rng(2).standard_normal((2, 3, 5, 7))
    X_copy = X.copy()
    out = blur_image(X)
    kernel = np.array([[1, 2, 1], [2, 188, 2], [1, 2, 1]]) / 200.0
    for n in range(2):
        for c in range(3):
            expected = correlate(X[n, c], kernel, mode="constant", cval=0.0)
            np.testing.assert_allclose(out[n, c], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(X, X_copy)
    assert out.dtype == np.float64
    assert blur_image(X.astype(np.float32)).dtype == np.float32
    # interior of a constant image is unchanged (the weights sum to 1)
    ones = blur_image(np.ones((1, 3, 4, 4)))
    np.testing.assert_allclose(ones[:, :, 1:-1, 1:-1], 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        blur_image(np.zeros((3, 4, 4)))
