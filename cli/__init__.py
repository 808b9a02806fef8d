"""emokit's command line (installed as ``emokit_cli``): one module per command group."""
