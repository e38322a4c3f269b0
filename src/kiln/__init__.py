"""Kiln: a self-hosted media publishing platform."""

__version__ = "0.1.0"
