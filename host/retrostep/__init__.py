"""retrostep: companion tool for the retrostep backward-walking trainer."""

__version__ = "0.1.0"
