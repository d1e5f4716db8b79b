"""Round trip from PyTorch (run by CTest with /usr/bin/python3, Debian's torch and onnx).

Trains a small MLP and a CNN (batch-norm, depthwise conv, max/average pooling, global average
pooling) on a Fashion-MNIST slice, exports each with torch.onnx.export at opsets 11 and 17,
imports them into Verdant and checks: logits equal PyTorch's within 1e-4 (relative), test
accuracy the same to 0.01 points (`verdant eval`), `verdant import` gives the same model; the
imported CNN fine-tunes (`verdant train`) and compresses (`verdant compress`, pruning + QAT), and
the results export to .vdm and run in verdant-edge.
"""
import json
import os
import sys

import numpy as np

import fmnist

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("PyTorch is not installed for this interpreter; skipping")
    sys.exit(fmnist.SKIP)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.BatchNorm1d(128), nn.ReLU(),
                         nn.Dropout(0.1), nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 10),
                         nn.LogSoftmax(dim=1))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 10))


def train(model, x, y, steps, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.NLLLoss() if isinstance(model[-1], nn.LogSoftmax) else nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    model.eval()
    return float(loss)


def main():
    ap = fmnist.parser(__doc__)
    ap.add_argument("--steps", type=int, default=300)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    w = fmnist.work_folder(a.work)
    xtr, ytr = fmnist.load(a.data, True, 6000)
    xte, yte = fmnist.load(a.data, False)
    xtr, ytr = torch.from_numpy(xtr), torch.from_numpy(ytr)
    check = fmnist.Checks()

    models = {"mlp": (mlp(), 3e-3), "cnn": (cnn(), 3e-3)}
    for name, (model, lr) in models.items():
        loss = train(model, xtr, ytr, a.steps, lr)
        with torch.no_grad():
            ref = model(torch.from_numpy(xte)).numpy()
        ref_acc = 100.0 * float((ref.argmax(1) == yte).mean())
        print(f"{name}: PyTorch trained {a.steps} steps (loss {loss:.3f}), test accuracy "
              f"{ref_acc:.2f}% [{check.elapsed():.0f} s]", flush=True)
        # Opset 11 as torch writes it by default (it folds BatchNorm into Conv in eval mode);
        # opset 17 keeping the BatchNormalization nodes (TrainingMode.PRESERVE on an eval model).
        for opset, kw in ((11, {}), (17, {"training": torch.onnx.TrainingMode.PRESERVE})):
            path = w(f"{name}{opset}.onnx")
            torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, opset_version=opset,
                              input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, **kw)
            ours, acc = fmnist.logits(a.logits, path, a.data, len(xte), w("logits.bin"))
            ok, worst = fmnist.close(ours, ref)
            check(ok, f"{name} opset {opset}: logits within 1e-4 of PyTorch's on the test set "
                      f"(worst {worst:.2e} of the bound)")
            if opset == 17:  # the CLI's own evaluation, once per model (it costs a pass)
                acc = fmnist.percent(
                    fmnist.run(a.verdant, "eval", "--checkpoint", path, "--data", a.data),
                    "test accuracy")
            check(abs(acc - ref_acc) <= 0.01 + 1e-9,
                  f"{name} opset {opset}: test accuracy {acc:.2f}% "
                  f"({'verdant eval' if opset == 17 else 'imported model'}) vs PyTorch "
                  f"{ref_acc:.2f}%")
            fmnist.run(a.verdant, "import", path, "--out", w(f"{name}{opset}.vckpt"))
            again, _ = fmnist.logits(a.logits, w(f"{name}{opset}.vckpt"), a.data, 1000,
                                     w("logits.bin"))
            check(np.array_equal(again, ours[:1000]), f"{name} opset {opset}: verdant "
                                                      "import's checkpoint gives the same logits")

    # The imported CNN as an ordinary Verdant model.
    cnn17 = w("cnn17.onnx")
    base = ["--data", a.data, "--threads", "2", "--no-energy", "--limit-train", "2000",
            "--limit-test", "1000"]
    fmnist.run(a.verdant, "train", "--model", cnn17, "--epochs", "1", "--lr", "0.01",
               "--out", w("finetune"), *base)
    tuned = json.load(open(w("finetune/results.json")))["test"]["accuracy"] * 100
    check(tuned > 50, f"fine-tuned imported CNN: {tuned:.2f}% on 1000 test images")
    with open(w("prune_qat.yaml"), "w") as f:
        f.write("epochs: 2\nlr: 0.005\nmodifiers:\n"
                "  - prune: {final_sparsity: 0.5, start_epoch: 0, end_epoch: 1}\n"
                "  - quantize: {mode: qat, activation_bits: 7, start_epoch: 1}\n")
    fmnist.run(a.verdant, "compress", "--model", cnn17, "--recipe", w("prune_qat.yaml"),
               "--out", w("compressed"), *base)
    compressed = json.load(open(w("compressed/report.json")))["accuracy_after"] * 100
    check(compressed > 50, f"compressed imported CNN (50% pruned, QAT): {compressed:.2f}%")
    images = fmnist.find(a.data, "t10k-images-idx3-ubyte")
    labels = fmnist.find(a.data, "t10k-labels-idx1-ubyte")
    # Against the engine's accuracy on the same 1000 test images: fp32 exactly, int8 (the QAT
    # ranges on the runtime's grid) within 3 points.
    for src, out, extra, engine, tol in (
            (w("finetune/checkpoint.vckpt"), w("finetuned.vdm"), [], tuned, 0.1),
            (w("compressed/model.vckpt"), w("compressed.vdm"), ["--precision", "int8"],
             compressed, 3.0)):
        fmnist.run(a.verdant, "export", src, "--out", out, *extra)
        text = fmnist.run(a.edge, "run", out, "--input", images, "--labels", labels,
                          "--limit", "1000")
        acc = fmnist.percent(text, "accuracy:")
        check(abs(acc - engine) <= tol, f"{os.path.basename(out)} in verdant-edge: {acc:.2f}% "
                                        f"on 1000 test images (engine {engine:.2f}%)")
    # The imported CNN straight to .vdm (BatchNorm folded, depthwise conv stored dense): the
    # runtime predicts what PyTorch predicts.
    fmnist.run(a.verdant, "export", cnn17, "--out", w("cnn17.vdm"))
    n = 5000
    text = fmnist.run(a.edge, "run", w("cnn17.vdm"), "--input", images, "--show", n, "--limit", n)
    with torch.no_grad():
        ref = models["cnn"][0](torch.from_numpy(xte[:n])).numpy().argmax(1)
    same = float((fmnist.edge_predictions(text) == ref).mean())
    check(same >= 0.999, f"cnn17.vdm (fp32) in verdant-edge predicts PyTorch's class for "
                         f"{100 * same:.2f}% of {n} test images")
    return check.exit_code()


if __name__ == "__main__":
    sys.exit(main())
