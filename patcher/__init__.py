"""Codemods that let a clone of 9cog/echoself train a Reservoir-Augmented Transformer."""

__version__ = "0.1.0"
