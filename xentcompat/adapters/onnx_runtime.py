"""ONNX Runtime: the ONNX loss operators as a model holds them, run by an `InferenceSession`; the loss alone.

Each API is a one-node or few-node ONNX graph (opset 18): `SoftmaxCrossEntropyLoss` on the logits, the same on
`Softmax` of them (the double softmax), and `NegativeLogLikelihoodLoss` on `LogSoftmax` or on `Log(Softmax)` (the
softmax-first forms of a model exported with a softmax as its last layer). Layout is ONNX's, classes second: logits
(N, C) -> (n, C, d1, ...), labels (N,) -> (n, d1, ...). Reduction, class weights (the third input) and `ignore_index`
are the operators' own attributes. Labels reach ONNX Runtime in their own dtype (the graph's label input takes it).

ONNX Runtime runs graphs; it builds no gradient (its inference build registers no gradient kernels, and the
training package that does, onnxruntime-training, is a separate build of another release that replaces this one),
so every cell's gradient is `absent`. Mode "eager" runs the graph as written (`ORT_DISABLE_ALL`: each node its own
kernel); mode "compiled" runs it as an `InferenceSession` does by default (`ORT_ENABLE_ALL`: the graph optimisers
rewrite it first). One session per API, options, dtypes, rank and mode, with symbolic batch and class dimensions.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from xentcompat.adapters.base import EAGER_AND_COMPILED, Call, framework_call, register
from xentcompat.adapters.layout import classes_first, native_code
from xentcompat.adapters.repro import array_code, target_lines
from xentcompat.reference.dtypes import float_type

LABEL_OPTIONS = frozenset({"reduction", "weight", "ignore_index", "extra_dims"})
PLAIN_OPTIONS = frozenset({"reduction", "extra_dims"})
OPSET = 18
NO_GRADIENT = ("ONNX Runtime's inference build registers no gradient kernels; onnxruntime-training, which builds the "
               "gradient graph, is a separate package of another release that replaces onnxruntime")
LEVELS = {"eager": "ORT_DISABLE_ALL", "compiled": "ORT_ENABLE_ALL"}
# each API's graph: (operator, its inputs, its output); "loss" takes the label input, the weights and the attributes
GRAPHS = {
    "cross_entropy": (("SoftmaxCrossEntropyLoss", "x", "loss"),),
    "cross_entropy_of_softmax": (("Softmax", "x", "p"), ("SoftmaxCrossEntropyLoss", "p", "loss")),
    "nll_log_softmax": (("LogSoftmax", "x", "log_p"), ("NegativeLogLikelihoodLoss", "log_p", "loss")),
    "nll_log_of_softmax": (("Softmax", "x", "p"), ("Log", "p", "log_p"),
                           ("NegativeLogLikelihoodLoss", "log_p", "loss")),
}


def versions() -> dict[str, str]:
    return {"onnxruntime": ort.__version__}


def available_devices() -> dict[str, str]:
    devices = {"cpu": "CPUExecutionProvider"}
    if "CUDAExecutionProvider" in ort.get_available_providers():
        devices["cuda"] = "CUDAExecutionProvider"
    return devices


def device_alive(kind: str) -> None:
    """A one-node graph run on the `kind` device: raises when a fault left it unusable."""
    session = _session("nll_log_softmax", "float32", "int64", 2, "none", None, False, "eager", kind)
    session.run(None, {"x": np.zeros((1, 2), np.float32), "y": np.zeros(1, np.int64)})


def _provider(kind: str) -> str:
    return "CUDAExecutionProvider" if kind == "cuda" else "CPUExecutionProvider"


def _nodes(graph: str, reduction: str, ignore_index: int | None, weighted: bool) -> list:
    attributes = {"reduction": reduction, **({} if ignore_index is None else {"ignore_index": ignore_index})}
    nodes = []
    for operator, given, output in GRAPHS[graph]:
        if operator in ("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"):
            nodes.append(helper.make_node(operator, [given, "y", *(["w"] if weighted else [])], [output],
                                          **attributes))
        elif operator == "Log":
            nodes.append(helper.make_node(operator, [given], [output]))
        else:
            nodes.append(helper.make_node(operator, [given], [output], axis=1))
    return nodes


@functools.cache
def _model(graph: str, dtype: str, label_dtype: str, rank: int, reduction: str, ignore_index: int | None,
           weighted: bool) -> bytes:
    """The serialised ONNX model of `graph`: logits of `rank` dimensions (N, C, d1, ...), symbolic."""
    element = helper.np_dtype_to_tensor_dtype(_numpy_dtype(dtype))
    shape = ["N", "C", *(f"d{i}" for i in range(1, rank - 1))]
    inputs = [helper.make_tensor_value_info("x", element, shape),
              helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(np.dtype(label_dtype)),
                                            [shape[0], *shape[2:]])]
    if weighted:
        inputs.append(helper.make_tensor_value_info("w", element, ["C"]))
    output = helper.make_tensor_value_info("loss", element, None)
    body = helper.make_graph(_nodes(graph, reduction, ignore_index, weighted), graph, inputs, [output])
    return helper.make_model(body, opset_imports=[helper.make_opsetid("", OPSET)]).SerializeToString()


def _numpy_dtype(dtype: str) -> np.dtype:
    return np.dtype(float_type(dtype).numpy_type)


@functools.cache
def _session(graph: str, dtype: str, label_dtype: str, rank: int, reduction: str, ignore_index: int | None,
             weighted: bool, mode: str, device: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[mode])
    options.log_severity_level = 3
    model = _model(graph, dtype, label_dtype, rank, reduction, ignore_index, weighted)
    return framework_call(ort.InferenceSession, model, options, providers=[_provider(device)])


def _loss(call: Call, graph: str) -> tuple:
    """The loss of `graph` on the call's arrays, back as the reference's rows; no gradient."""
    problem, options = call.problem, call.problem.options
    logits = classes_first(problem.logits, options.extra_dims)
    labels = problem.labels.reshape(-1, *options.extra_dims) if options.extra_dims else problem.labels
    weighted = options.weight is not None
    session = _session(graph, call.dtype, labels.dtype.name, logits.ndim, options.reduction, options.ignore_index,
                       weighted, call.mode, call.device)
    feeds = {"x": np.ascontiguousarray(logits.astype(_numpy_dtype(call.dtype))), "y": labels}
    if weighted:
        feeds["w"] = np.asarray(options.weight, np.float64).astype(_numpy_dtype(call.dtype))
    [loss] = framework_call(session.run, None, feeds)
    loss = np.asarray(loss).astype(np.float64)
    return (loss.reshape(-1) if loss.ndim else loss), None


@register("onnxruntime", "ort.SoftmaxCrossEntropyLoss", "SoftmaxCrossEntropyLoss(x, y{options})",
          supports=LABEL_OPTIONS, modes=EAGER_AND_COMPILED, no_gradient=NO_GRADIENT)
def cross_entropy(call: Call):
    return _loss(call, "cross_entropy")


@register("onnxruntime", "ort.SoftmaxCrossEntropyLoss(Softmax)",
          "SoftmaxCrossEntropyLoss(Softmax(x, axis=1), y{options})", supports=PLAIN_OPTIONS,
          modes=EAGER_AND_COMPILED, no_gradient=NO_GRADIENT)
def cross_entropy_of_softmax(call: Call):
    """The double softmax: a model exported with a softmax last, fed to the loss that applies its own."""
    return _loss(call, "cross_entropy_of_softmax")


@register("onnxruntime", "ort.NegativeLogLikelihoodLoss(LogSoftmax)",
          "NegativeLogLikelihoodLoss(LogSoftmax(x, axis=1), y{options})", supports=LABEL_OPTIONS,
          modes=EAGER_AND_COMPILED, no_gradient=NO_GRADIENT)
def nll_log_softmax(call: Call):
    return _loss(call, "nll_log_softmax")


@register("onnxruntime", "ort.NegativeLogLikelihoodLoss(Log(Softmax))",
          "NegativeLogLikelihoodLoss(Log(Softmax(x, axis=1)), y{options})", supports=LABEL_OPTIONS,
          modes=EAGER_AND_COMPILED, no_gradient=NO_GRADIENT)
def nll_log_of_softmax(call: Call):
    """The tutorial form exported: log of the probabilities."""
    return _loss(call, "nll_log_of_softmax")


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste script that builds the same ONNX graph and runs it in ONNX Runtime at the call's level."""
    problem, options = call.problem, call.problem.options
    graph = api.run.__name__
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    rank = 2 + len(options.extra_dims)
    dims = ["N", "C", *(f"d{i}" for i in range(1, rank - 1))]
    numpy_dtype = "ml_dtypes.bfloat16" if call.dtype == "bfloat16" else f"np.{call.dtype}"
    layout = native_code(options.extra_dims, problem.num_classes)
    lines = ["import numpy as np", "import ml_dtypes", "import onnxruntime as ort", "from onnx import helper", "",
             f"x = np.asarray({source}, dtype=np.float64){layout}"]
    if options.extra_dims:
        lines.append("x = np.moveaxis(x, -1, 1)  # classes second, as ONNX takes them")
    lines.append(f"x = x.astype({numpy_dtype})")
    lines += target_lines(problem, lambda code: code, lambda code: code)
    feeds = '{"x": x, "y": y' + (', "w": w}' if options.weight is not None else "}")
    if options.weight is not None:
        lines.append(f"w = np.asarray({list(options.weight)}, dtype=np.float64).astype({numpy_dtype})")
    element = f"helper.np_dtype_to_tensor_dtype(np.dtype({numpy_dtype}))"
    lines += [f"inputs = [helper.make_tensor_value_info('x', {element}, {dims}),",
              f"          helper.make_tensor_value_info('y', helper.np_dtype_to_tensor_dtype(y.dtype), "
              f"{[dims[0], *dims[2:]]})"
              + (f", helper.make_tensor_value_info('w', {element}, ['C'])]" if options.weight is not None else "]"),
              "nodes = ["]
    lines += [f"    {_node_code(node)}," for node in _nodes(graph, options.reduction, options.ignore_index,
                                                           options.weight is not None)]
    lines += ["]",
              f"graph = helper.make_graph(nodes, {graph!r}, inputs, "
              f"[helper.make_tensor_value_info('loss', {element}, None)])",
              f"model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', {OPSET})])",
              "options = ort.SessionOptions()",
              f"options.graph_optimization_level = ort.GraphOptimizationLevel.{LEVELS[call.mode]}",
              f"session = ort.InferenceSession(model.SerializeToString(), options, "
              f"providers=[{_provider(call.device)!r}])",
              f"[loss] = session.run(None, {feeds})",
              "print(loss)"]
    return "\n".join(lines)


def _node_code(node: onnx.NodeProto) -> str:
    attributes = "".join(f", {a.name}={helper.get_attribute_value(a)!r}".replace("=b'", "='")
                         for a in node.attribute)
    return f"helper.make_node({node.op_type!r}, {list(node.input)}, {list(node.output)}{attributes})"
