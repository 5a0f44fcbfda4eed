"""PyTorch side of `npm run bench:train`: times PyTorch's training step for the same graphs.

bench/pytorch/PytorchStepTimer.ts starts this script once and talks to it over stdin/stdout, one
JSON object per line, so that its timings can be interleaved with onnxruntime's (A, B, A, B).

  {"cmd": "probe"} -> {"ok": true, "torch": <version>, "blas": <which BLAS torch uses>}
  {"cmd": "load", "id": ..., "file": <graph description JSON>}
      -> {"ok": true, "parameters": <count>}
  {"cmd": "time", "id": ..., "threads": n, "warmup": w, "steps": s, "maxSeconds": t, "lr": x, "momentum": m}
      -> {"ok": true, "stepMsMedian": ..., "loss": ...}

The graph description (written by PytorchStepTimer.ts from the ONNX model) lists the nodes, the
initializers, which of them are trained, and one batch. The graph is run by a small interpreter
that maps each ONNX operator onto the torch.nn.functional call PyTorch's own modules use
(F.conv2d, F.batch_norm in training mode, F.linear, F.embedding, F.layer_norm, ...), so the
forward, autograd backward and torch.optim.SGD step are PyTorch eager's, as in the manifest's
reference timings (fixtures/README.md "Reference timings"). The interpreter's per-node Python
dispatch costs a few microseconds per node, i.e. well under 1 % of any step timed here.

Set OPENBLAS_NUM_THREADS=1 in the environment (the manifest's recipe); the thread count is
torch.set_num_threads(n) per request. Without an importable torch the script answers
{"ok": false, "error": ...} to every request, and the bench falls back to the manifest figures.
"""

import base64
import json
import os
import re
import resource
import statistics
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F

    IMPORT_ERROR = None
except Exception as error:  # the bench reports the reason and falls back to the manifest figures
    IMPORT_ERROR = f"{type(error).__name__}: {error}"

NUMPY_DTYPES = {"float32": "<f4", "int64": "<i8", "int32": "<i4", "bool": "?", "uint8": "u1", "int8": "i1"}
# ONNX TensorProto.DataType -> torch dtype, for Cast.
ONNX_TO_TORCH = {1: "float32", 6: "int32", 7: "int64", 9: "bool", 11: "float64"}


def decode_tensor(description):
    array = np.frombuffer(base64.b64decode(description["data"]), dtype=NUMPY_DTYPES[description["dtype"]])
    return torch.from_numpy(array.copy().reshape(description["dims"]))


def symmetric_pads(pads, rank):
    """ONNX pads [begin..., end...] -> PyTorch's symmetric padding, or None when asymmetric."""
    if not pads:
        return [0] * rank
    begin, end = pads[:rank], pads[rank:]
    return begin if begin == end else None


class Graph:
    def __init__(self, description):
        self.nodes = description["nodes"]
        self.output = description["output"]
        self.batch = {name: decode_tensor(t) for name, t in description["batch"].items()}
        self.labels = decode_tensor(description["labels"])
        trained = set(description["trained"])
        self.values = {}
        self.parameters = []
        for name, tensor in description["initializers"].items():
            value = decode_tensor(tensor)
            if name in trained:
                value = torch.nn.Parameter(value)
                self.parameters.append(value)
            self.values[name] = value
        for node in self.nodes:
            for key, attribute in node["attributes"].items():
                if isinstance(attribute, dict) and "data" in attribute:
                    node["attributes"][key] = decode_tensor(attribute)

    def forward(self):
        env = dict(self.values)
        env.update(self.batch)
        for node in self.nodes:
            inputs = [env[name] if name else None for name in node["inputs"]]
            outputs = run_node(node["op"], inputs, node["attributes"])
            for name, value in zip(node["outputs"], outputs):
                if name:
                    env[name] = value
        return env[self.output]


def run_node(op, x, a):
    if op == "Conv":
        rank = x[1].dim() - 2
        pads = symmetric_pads(a.get("pads"), rank)
        if pads is None:
            raise ValueError("asymmetric Conv pads are not supported by this interpreter")
        return [F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, a.get("strides", [1, 1]), pads, a.get("dilations", [1, 1]), a.get("group", 1))]
    if op == "BatchNormalization":
        # ONNX momentum weighs the running value; PyTorch's weighs the batch statistic.
        return [F.batch_norm(x[0], x[3], x[4], x[1], x[2], True, 1.0 - a.get("momentum", 0.9), a.get("epsilon", 1e-5))]
    if op == "Relu":
        return [F.relu(x[0])]
    if op == "MaxPool":
        pads = symmetric_pads(a.get("pads"), 2)
        return [F.max_pool2d(x[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]), pads, a.get("dilations", [1, 1]), bool(a.get("ceil_mode", 0)))]
    if op == "AveragePool":
        pads = symmetric_pads(a.get("pads"), 2)
        return [F.avg_pool2d(x[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]), pads, bool(a.get("ceil_mode", 0)), not a.get("count_include_pad", 0))]
    if op == "GlobalAveragePool":
        return [F.adaptive_avg_pool2d(x[0], 1)]
    if op == "Flatten":
        return [torch.flatten(x[0], a.get("axis", 1))]
    if op == "Gemm":
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise ValueError("Gemm with transA or alpha/beta != 1 is not supported by this interpreter")
        weight = x[1] if a.get("transB", 0) else x[1].t()
        return [F.linear(x[0], weight, x[2] if len(x) > 2 else None)]
    if op == "MatMul":
        return [torch.matmul(x[0], x[1])]
    if op == "Add":
        return [x[0] + x[1]]
    if op == "Sub":
        return [x[0] - x[1]]
    if op == "Mul":
        return [x[0] * x[1]]
    if op == "Div":
        return [x[0] / x[1]]
    if op == "Erf":
        return [torch.erf(x[0])]
    if op == "Tanh":
        return [torch.tanh(x[0])]
    if op == "Sigmoid":
        return [torch.sigmoid(x[0])]
    if op == "Softmax":
        return [torch.softmax(x[0], a.get("axis", -1))]
    if op == "LayerNormalization":
        axis = a.get("axis", -1)
        shape = x[0].shape[axis:]
        return [F.layer_norm(x[0], shape, x[1], x[2] if len(x) > 2 else None, a.get("epsilon", 1e-5))]
    if op == "Gather":
        axis = a.get("axis", 0)
        if axis == 0 and isinstance(x[0], torch.nn.Parameter):
            return [F.embedding(x[1], x[0])]  # what nn.Embedding runs
        return [torch.index_select(x[0], axis, x[1].reshape(-1)).reshape(x[0].shape[:axis] + x[1].shape + x[0].shape[axis + 1:])]
    if op == "Reshape":
        shape = [int(s) for s in x[1].tolist()]
        if not a.get("allowzero", 0):
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return [x[0].reshape(shape)]
    if op == "Transpose":
        return [x[0].permute(a["perm"])]
    if op == "Unsqueeze":
        out = x[0]
        for axis in sorted(int(v) for v in x[1].tolist()):
            out = out.unsqueeze(axis)
        return [out]
    if op == "Constant":
        return [a["value"]]
    if op == "Equal":
        return [x[0] == x[1]]
    if op == "Cast":
        return [x[0].to(getattr(torch, ONNX_TO_TORCH[a["to"]]))]
    if op in ("Identity", "Dropout"):
        return [x[0]]
    raise ValueError(f"operator {op} is not supported by bench/pytorch/train_speed.py")


def blas_description():
    """Which BLAS PyTorch's matrix products run on: Debian's torch links the system libblas.so.3,
    which is the slow reference BLAS unless an optimized one (OpenBLAS) is the alternative."""
    info = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    alternative = "/etc/alternatives/libblas.so.3-x86_64-linux-gnu"
    library = os.path.realpath(alternative) if os.path.exists(alternative) else "unknown"
    return f"BLAS_INFO={info.group(1) if info else 'unknown'}, libblas.so.3 -> {library}"


def time_steps(graph, threads, warmup, steps, max_seconds, lr, momentum):
    torch.set_num_threads(threads)
    optimizer = torch.optim.SGD(graph.parameters, lr=lr, momentum=momentum)
    times = []
    loss = None
    deadline = time.perf_counter() + max_seconds
    for i in range(warmup + steps):
        if len(times) >= 10 and time.perf_counter() > deadline:
            break
        if i == warmup:
            usage_before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(graph.forward(), graph.labels)
        loss.backward()
        optimizer.step()
        elapsed = (time.perf_counter() - start) * 1000.0
        if i >= warmup:
            times.append(elapsed)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # Why a step is slow: user CPU time above the wall time means busy-waiting threads, system
    # time and page faults mean memory churn, involuntary switches mean preemption.
    per_step = lambda value: round(value / len(times), 3)
    diagnostics = {
        "stepMs": [round(t, 3) for t in times],
        "userMsPerStep": per_step((usage.ru_utime - usage_before.ru_utime) * 1000.0),
        "systemMsPerStep": per_step((usage.ru_stime - usage_before.ru_stime) * 1000.0),
        "minorFaultsPerStep": per_step(usage.ru_minflt - usage_before.ru_minflt),
        "involuntarySwitchesPerStep": per_step(usage.ru_nivcsw - usage_before.ru_nivcsw),
        "voluntarySwitchesPerStep": per_step(usage.ru_nvcsw - usage_before.ru_nvcsw),
    }
    return statistics.median(times), float(loss), diagnostics


def main():
    graphs = {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if IMPORT_ERROR is not None:
                raise RuntimeError(f"torch is not importable by {sys.executable}: {IMPORT_ERROR}")
            if request["cmd"] == "probe":
                reply = {"ok": True, "torch": torch.__version__, "blas": blas_description()}
            elif request["cmd"] == "load":
                with open(request["file"], encoding="utf8") as f:
                    graph = Graph(json.load(f))
                graphs[request["id"]] = graph
                reply = {"ok": True, "parameters": sum(p.numel() for p in graph.parameters)}
            elif request["cmd"] == "time":
                ms, loss, diagnostics = time_steps(graphs[request["id"]], request["threads"], request["warmup"], request["steps"], request["maxSeconds"], request["lr"], request["momentum"])
                reply = {"ok": True, "stepMsMedian": ms, "loss": loss, **diagnostics}
            else:
                raise ValueError(f"unknown command {request['cmd']}")
        except Exception as error:
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
