"""Closest-name suggestions for misspelt pipeline, parameter and corpus names."""

from __future__ import annotations

import difflib
from typing import Iterable


def closest(name: str, candidates: Iterable[str]) -> str | None:
    candidates = list(candidates)
    for candidate in candidates:  # a wrong case is the likeliest slip (c for C)
        if candidate.lower() == name.lower():
            return candidate
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None
