"""xentcompat: a compatibility test suite for softmax cross-entropy APIs."""

__version__ = "0.1.0"
