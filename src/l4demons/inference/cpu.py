"""Backends for any device, the CPU's fastest among them: eager, channels-last, torch.compile, ONNX Runtime, OpenVINO."""

from __future__ import annotations

import abc
import copy
import importlib.util
import inspect
import io
import logging
import time
import warnings
from typing import Mapping

import torch
from torch import nn

from l4demons.inference.forward import Forward, InferenceError, Logits, probe_planes, to_host

log = logging.getLogger(__name__)


class Eager(Forward):
    name = "eager"

    def _run(self, planes: torch.Tensor) -> Logits:
        return to_host(*self.reference(planes.to(self.device)))


class ChannelsLast(Forward):
    name = "channels_last"

    def _setup(self) -> None:
        self.module = copy.deepcopy(self.reference).to(memory_format=torch.channels_last)

    def _load(self, state: Mapping[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)  # copy_ keeps each weight's NHWC layout

    def _run(self, planes: torch.Tensor) -> Logits:
        x = planes.to(self.device).contiguous(memory_format=torch.channels_last)
        return to_host(*self.module(x))


class Compiled(Forward):
    name = "compile"

    def _setup(self) -> None:
        # Parameters are graph inputs (not frozen constants), so copying new weights in
        # place is seen by the compiled code without a recompile. Batch sizes compile
        # three times: 1, 2-15 and 16 or more (PyTorch's convolution specialises them).
        self.module = copy.deepcopy(self.reference)
        self.fn = torch.compile(self.module, dynamic=True)
        t0 = time.perf_counter()
        self(probe_planes(self.device))
        log.info("torch.compile of the network took %.1f s", time.perf_counter() - t0)

    def _load(self, state: Mapping[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)

    def _run(self, planes: torch.Tensor) -> Logits:
        # Always a fresh inference-mode tensor: the compiled code is guarded on the input's
        # kind, and a caller's ordinary tensor would otherwise compile a second copy.
        return to_host(*self.fn(planes.to(self.device).clone()))


def onnx_bytes(net: nn.Module, device: torch.device) -> bytes:
    """The network as an ONNX model with a dynamic batch, in memory.

    The TorchScript exporter takes ~0.3 s; where a PyTorch release has
    dropped it, the torch.export one (needs ``onnxscript``, several seconds).
    """
    if importlib.util.find_spec("onnx") is None:
        raise InferenceError("the ONNX export needs the onnx package (pip install onnx)")
    example = probe_planes(device)
    names = {"input_names": ["planes"], "output_names": ["policy", "wdl"]}
    # Before PyTorch 2.5 there is no `dynamo` argument and the TorchScript exporter is the only one.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        try:
            buf = io.BytesIO()
            axes = {"planes": {0: "batch"}, "policy": {0: "batch"}, "wdl": {0: "batch"}}
            torch.onnx.export(net, (example,), buf, dynamic_axes=axes, **legacy, **names)
            return buf.getvalue()
        except (TypeError, AttributeError, NotImplementedError, RuntimeError) as e:
            if not legacy:
                raise
            log.info("TorchScript ONNX export unavailable (%s); torch.export takes seconds per export", e)
        batch = torch.export.Dim("batch", min=1, max=65536)
        program = torch.onnx.export(net, (example,), dynamo=True, dynamic_shapes={"planes": {0: batch}}, verbose=False,
                                    **names)
        return program.model_proto.SerializeToString()


class _OnnxForward(Forward):
    """A runtime fed the exported graph; new weights mean a new export and a new session."""

    package = ""

    def _setup(self) -> None:
        if importlib.util.find_spec(self.package) is None:
            raise InferenceError(f"{self.package} is not installed (pip install {self.package})")
        if self.device.type != "cpu":
            raise InferenceError(f"the {self.name} backend runs on the CPU only")
        self._open(onnx_bytes(self.reference, self.device))

    def _load(self, state: Mapping[str, torch.Tensor]) -> None:
        self._setup()

    @abc.abstractmethod
    def _open(self, model: bytes) -> None:
        """Load the ONNX model into the runtime, ``self.threads`` intra-op threads."""


class OnnxRuntime(_OnnxForward):
    name = package = "onnxruntime"

    def _open(self, model: bytes) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def _run(self, planes: torch.Tensor) -> Logits:
        policy, wdl = self.session.run(None, {"planes": planes.cpu().contiguous().numpy()})
        return torch.from_numpy(policy), torch.from_numpy(wdl)


class OpenVino(_OnnxForward):
    name = package = "openvino"

    def _open(self, model: bytes) -> None:
        import openvino as ov

        # f32 on purpose: OpenVINO defaults to bf16 on CPUs that have it.
        config = {"INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "f32"}
        core = ov.Core()
        self.request = core.compile_model(core.read_model(model), "CPU", config).create_infer_request()

    def _run(self, planes: torch.Tensor) -> Logits:
        out = self.request.infer({0: planes.cpu().contiguous().numpy()}, share_inputs=True)  # outputs are copies
        return torch.from_numpy(out[0]), torch.from_numpy(out[1])

