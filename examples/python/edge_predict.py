#!/usr/bin/python3
"""Running an exported .vdm from Python: Fashion-MNIST test images (uint8, as they come) into
verdant.edge.Model, accuracy and latency.

    verdant train --model mlp --out run
    verdant export run/checkpoint.vckpt --precision int8 \
        --calibration /usr/share/datasets/fashion-mnist --out m.vdm
    /usr/bin/python3 examples/python/edge_predict.py m.vdm
"""
import argparse

import numpy as np

import verdant
from fashion_mnist import load


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a .vdm file (verdant export)")
    ap.add_argument("--limit", type=int, default=0, help="first N test images (0: all)")
    a = ap.parse_args()

    model = verdant.edge.Model(a.model)
    info = model.info()
    print(f"{a.model}: input {info['input_shape']}, {info['output_size']} outputs, "
          f"{info['file_bytes']} bytes, kernels {info['kernels']}")
    for i, layer in enumerate(info["layers"]):
        print(f"  {i} {layer['kind']:7} {layer['encoding']:11} {layer['input']} -> "
              f"{layer['output']}")
    x, y = load("t10k", a.limit)
    predictions = model.predict(x)  # uint8 pixels go through the model's byte transform
    print(f"accuracy {np.mean(predictions == y):.2%} on {len(y)} test images")
    lat = model.latency(x[0])
    print(f"latency per inference: median {lat['median_us']:.1f} us, p99 "
          f"{lat['p99_us']:.1f} us (batch 1, one thread)")


if __name__ == "__main__":
    main()
