"""dqnkit: train DQN agents with DI-engine, export them to TorchScript/ONNX, evaluate them."""

__version__ = "0.1.0"
