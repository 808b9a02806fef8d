"""The GE2E speaker encoder of the ``resemblyzer`` wheel as an emotion backbone (issue 13)."""
