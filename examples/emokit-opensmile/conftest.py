# emokit's fixtures (emokit_registry, emokit_tiny_corpus, emokit_home) for this plugin's tests.
pytest_plugins = ["emokit_core.testing"]
