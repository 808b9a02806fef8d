"""emokit's built-in plugins (installed as ``emokit_plugins``).

Each sub-package is a plugin registered through the ``emokit`` entry-point group in
pyproject.toml, exactly as a third-party plugin would be.
"""
