"""Lighthouse bridge: the event-sourced shadow of a software project."""

__version__ = "0.1.0"
