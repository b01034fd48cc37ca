"""Exporters of an extracted subnet, and the one ONNX Runtime session builder.

`onnx_export` (float ONNX, and int8 / int4 kernels through `onnx_kernels`), `torch_export`
(torch.export, TorchScript), `coreml_export` (Core ML) and `ort_session`. Imports only
`supernet` and `search_space` (torch, onnx, onnxruntime and coremltools inside functions), so
`latency_models` can build and time what it measures through it without a cycle.
"""
