"""Exporters: a subnet as ONNX (float, or with int8 / int4 kernels), torch.export / TorchScript, Core ML.

Imports only `supernet` and `search_space` (torch, onnx and coremltools inside functions), so
`latency_models` can build what it times through it without a cycle.
"""
