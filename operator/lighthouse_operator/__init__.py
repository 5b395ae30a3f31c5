"""Lighthouse operator: reconciles LighthouseBridge custom resources."""

__version__ = "0.1.0"
