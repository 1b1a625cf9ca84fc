"""ethoflow: fast localization, slow classification of animal behavior."""

__version__ = "0.1.0"
