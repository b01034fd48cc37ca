"""The latency agent: times ONNX models on the machine it runs on, for a search running elsewhere.

Standalone on purpose: it imports nothing else of vit-nas, and needs only Python, numpy and
onnxruntime (plus onnx, to check uploads), so it installs on a Raspberry Pi, a Jetson or a
phone under Termux without torch or ray. The timing discipline it shares with the local `cpu`
device lives here (`latency_agent.timing`), and so does the device fingerprint every
measurement records (`latency_agent.fingerprint`). `python -m latency_agent serve` starts it.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
