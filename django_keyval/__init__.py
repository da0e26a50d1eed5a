"""A persistent key-value store kept in the project's own database."""

__version__ = "0.2.0"
