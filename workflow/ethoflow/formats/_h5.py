"""Helpers for reading HDF5 pose files."""

from __future__ import annotations

import numpy as np


def strings(ds) -> list[str]:
    """An HDF5 string dataset (bytes or str) as a flat list of str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(ds).ravel()]
