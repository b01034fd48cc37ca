"""After the search: a best.yaml as a deployable folder, its exporters, and fine-tuning that folder.

`deploy.export` (ONNX float and int kernels, TorchScript / torch.export, Core ML, ONNX
Runtime sessions) depends only on `supernet` and `search_space`, so `latency_models` may
use it to build the models it times; the rest of `deploy` sits above `search`.
"""
