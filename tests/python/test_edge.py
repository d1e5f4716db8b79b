"""verdant.edge.Model: the same predictions as verdant-edge, NumPy inputs in their layouts,
clear errors for a wrong dtype or shape, info() and latency()."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import verdant
from verdant.edge import Model

from conftest import FASHION_MNIST, SOURCE_DIR, tool

sys.path.insert(0, os.path.join(SOURCE_DIR, "examples", "python"))
import fashion_mnist  # noqa: E402  (the examples' reader)


@pytest.fixture(scope="module")
def test_images():
    return fashion_mnist.load("t10k", 64, FASHION_MNIST)[0]


def test_predictions_match_verdant_edge(edge_model, test_images):
    r = subprocess.run(
        [tool("VERDANT_EDGE_EXE"), "run", edge_model, "--input",
         os.path.join(FASHION_MNIST, "t10k-images-idx3-ubyte.gz"), "--limit", "20"],
        check=True, capture_output=True, text=True)
    expected = [int(v) for v in re.search(r"predictions: ([\d ]+)", r.stdout).group(1).split()]
    m = Model(edge_model)
    batch = m.predict(test_images[:20])  # uint8 pixels, (N, H, W)
    assert batch.dtype == np.int64 and batch.shape == (20,)
    assert batch.tolist() == expected
    assert [m.predict(img) for img in test_images[:20]] == expected  # one (H, W) sample
    assert isinstance(m.predict(test_images[0]), int)


def test_layouts_give_the_same_answer(edge_model, test_images):
    m = Model(edge_model)
    info = m.info()
    scale, offset = info["byte_scale"], info["byte_offset"]
    x = test_images[:8].astype(np.float32) * np.float32(scale) + np.float32(offset)
    expected = m.predict(test_images[:8])
    assert m.predict(x).tolist() == expected.tolist()  # (N, 28, 28) float32, in place
    assert m.predict(x.reshape(8, 1, 28, 28)).tolist() == expected.tolist()  # (N, C, H, W)
    assert m.predict(x.reshape(8, 784)).tolist() == expected.tolist()  # (N, features)
    assert m.predict(np.asfortranarray(x)).tolist() == expected.tolist()  # copied
    wide = np.zeros((8, 28, 56), dtype=np.float32)
    wide[:, :, ::2] = x
    assert m.predict(wide[:, :, ::2]).tolist() == expected.tolist()  # strided view, copied
    assert m.predict(x.reshape(8, 784)[0]) == expected[0]  # (features,)
    assert m.predict(x.reshape(8, 784)[:1]).shape == (1,)  # (1, features) stays a batch
    logits = m.run(x)
    assert logits.dtype == np.float32 and logits.shape == (8, 10)
    assert logits.argmax(1).tolist() == expected.tolist()
    assert m.run(x[0]).shape == (10,)


def test_wrong_dtype_or_shape_is_a_clear_error(edge_model, test_images):
    m = Model(edge_model)
    with pytest.raises(TypeError, match=r"^input dtype float64: the model takes float32"):
        m.predict(test_images[:2].astype(np.float64))
    with pytest.raises(TypeError, match="int32"):
        m.predict(np.zeros((2, 784), dtype=np.int32))
    with pytest.raises(ValueError, match=r"^input shape \(3, 5\): the model takes 784 values"):
        m.predict(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(785,\)"):
        m.predict(np.zeros(785, dtype=np.float32))
    with pytest.raises(FileNotFoundError):
        Model(os.path.join(os.path.dirname(edge_model), "missing.vdm"))


def test_a_corrupt_file_is_verdants_one_line_error(edge_model, tmp_path):
    data = bytearray(open(edge_model, "rb").read())
    data[200] ^= 0xFF
    bad = tmp_path / "bad.vdm"
    bad.write_bytes(bytes(data))
    with pytest.raises(verdant.VerdantError, match=str(bad)) as e:
        Model(bad)
    assert "\n" not in str(e.value)


def test_info_and_latency(edge_model, test_images):
    m = Model(edge_model)
    info = m.info()
    assert info["input_shape"] == (1, 28, 28) and m.input_size == 784
    assert info["output_size"] == 10 == m.output_size
    assert [(l["kind"], l["encoding"]) for l in info["layers"]] == [
        ("flatten", "-"), ("linear", "int8"), ("linear", "int8"), ("linear", "int8")]
    assert [l["output"] for l in info["layers"]] == [(784, 1, 1), (300, 1, 1), (100, 1, 1),
                                                      (10, 1, 1)]
    assert info["file_bytes"] == os.path.getsize(edge_model)
    assert info["macs"] == 784 * 300 + 300 * 100 + 100 * 10
    lat = m.latency(test_images[0], runs=200)
    assert 0 < lat["min_us"] <= lat["median_us"] <= lat["p99_us"]
    assert lat["runs"] == 200 and lat["kernels"] == info["kernels"]
