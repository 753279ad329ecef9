"""KubeFox for Python: the SDK and the platform. The API lives in subpackages."""

__version__ = "0.1.0"
