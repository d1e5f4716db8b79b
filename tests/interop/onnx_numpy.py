"""A small NumPy evaluator for the ONNX files Verdant exports (fp32 and int8 QDQ).

ONNX 1.12 has no reference evaluator and OpenCV 4.6 cannot run QDQ with constant weight
inputs, so the int8 check reads the file with the `onnx` package and runs it here. Only the
operators Verdant writes are implemented, following the ONNX operator specification
(QuantizeLinear rounds half to even and saturates; DequantizeLinear per tensor or per axis).
"""
import numpy as np
from onnx import numpy_helper


def _attrs(node):
    out = {}
    for a in node.attribute:
        if a.type == a.INT:
            out[a.name] = a.i
        elif a.type == a.FLOAT:
            out[a.name] = a.f
        elif a.type == a.INTS:
            out[a.name] = list(a.ints)
        elif a.type == a.STRING:
            out[a.name] = a.s.decode()
        elif a.type == a.TENSOR:
            out[a.name] = numpy_helper.to_array(a.t)
    return out


def _windows(x, k, stride, pad, dilation=1, fill=0.0):
    """[N, C, H, W] -> [N, C, OH, OW, k, k] views of the (padded) input."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    n, c, h, w = x.shape
    span = dilation * (k - 1) + 1
    oh, ow = (h - span) // stride + 1, (w - span) // stride + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, oh, ow, k, k),
        (s[0], s[1], s[2] * stride, s[3] * stride, s[2] * dilation, s[3] * dilation),
        writeable=False)


def _conv(x, w, b, a):
    k = w.shape[2]
    groups = a.get("group", 1)
    stride = a.get("strides", [1, 1])[0]
    pad = a.get("pads", [0, 0, 0, 0])[0]
    dil = a.get("dilations", [1, 1])[0]
    win = _windows(x.astype(np.float64), k, stride, pad, dil)  # [N, C, OH, OW, k, k]
    n, c, oh, ow = win.shape[:4]
    oc = w.shape[0]
    cg, og = c // groups, oc // groups
    out = np.empty((n, oc, oh, ow))
    for g in range(groups):
        wg = w[g * og:(g + 1) * og].astype(np.float64)  # [og, cg, k, k]
        xg = win[:, g * cg:(g + 1) * cg]  # [N, cg, OH, OW, k, k]
        out[:, g * og:(g + 1) * og] = np.einsum("ncyxij,ocij->noyx", xg, wg, optimize=True)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def _pool(x, a, op):
    k = a["kernel_shape"][0]
    stride = a.get("strides", [1, 1])[0]
    pad = a.get("pads", [0, 0, 0, 0])[0]
    if op == "MaxPool":
        return _windows(x, k, stride, pad, fill=-np.inf).max(axis=(4, 5))
    if pad and not a.get("count_include_pad", 0):
        raise NotImplementedError("AveragePool without count_include_pad")
    return _windows(x, k, stride, pad).mean(axis=(4, 5))


def _quantize(x, scale, zero, axis):
    scale, zero = _along(scale, x, axis), _along(zero, x, axis)
    info = np.iinfo(zero.dtype)
    return np.clip(np.rint(x / scale) + zero.astype(np.int64), info.min, info.max).astype(zero.dtype)


def _along(v, x, axis):
    v = np.asarray(v)
    if v.ndim == 0:
        return v
    shape = [1] * x.ndim
    shape[axis] = v.size
    return v.reshape(shape)


def run(model, x):
    """Runs the graph of `model` (an onnx.ModelProto) on `x`; returns its first output."""
    g = model.graph
    env = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    env[g.input[0].name] = x
    for node in g.node:
        a = _attrs(node)
        i = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            y = a["value"]
        elif op == "Identity" or op == "Dropout":
            y = i[0]
        elif op == "QuantizeLinear":
            y = _quantize(i[0], i[1], i[2], a.get("axis", 1))
        elif op == "DequantizeLinear":
            axis = a.get("axis", 1)
            y = ((i[0].astype(np.float64) - _along(i[2], i[0], axis).astype(np.float64)) *
                 _along(i[1], i[0], axis)).astype(np.float32)
        elif op == "Conv":
            y = _conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "Gemm":
            w = i[1].T if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * (i[0].astype(np.float64) @ w.astype(np.float64))
            if len(i) > 2 and i[2] is not None:
                y = y + a.get("beta", 1.0) * i[2]
        elif op == "MatMul":
            y = i[0].astype(np.float64) @ i[1]
        elif op in ("Add", "Mul", "Div"):
            y = {"Add": np.add, "Mul": np.multiply, "Div": np.divide}[op](i[0], i[1])
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "LeakyRelu":
            y = np.where(i[0] > 0, i[0], a.get("alpha", 0.01) * i[0])
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-i[0]))
        elif op == "Tanh":
            y = np.tanh(i[0])
        elif op == "Erf":
            from math import erf
            y = np.vectorize(erf)(i[0])
        elif op in ("MaxPool", "AveragePool"):
            y = _pool(i[0], a, op)
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            y = i[0].reshape(i[0].shape[0], -1)
        elif op == "BatchNormalization":
            s = (i[1] / np.sqrt(i[4] + a.get("epsilon", 1e-5))).reshape(1, -1, *[1] * (i[0].ndim - 2))
            y = (i[0] - i[3].reshape(s.shape)) * s + i[2].reshape(s.shape)
        elif op in ("Softmax", "LogSoftmax"):
            z = i[0] - i[0].max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
            y = z - lse if op == "LogSoftmax" else np.exp(z - lse)
        else:
            raise NotImplementedError(op)
        if np.asarray(y).dtype == np.float64:
            y = np.asarray(y, dtype=np.float32)
        env[node.output[0]] = y
    return env[g.output[0].name]
