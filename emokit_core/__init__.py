"""emokit core: the contracts and machinery every emokit plugin builds on.

Importing this package is cheap (no torch, no scikit-learn): the CLI starts fast and
plugins pull heavy libraries only when a pipeline is built.
"""

__version__ = "0.1.0"

# The plugin contract's major version: a plugin declaring another one is skipped.
PLUGIN_API_VERSION = 1

__all__ = ["__version__", "PLUGIN_API_VERSION"]
