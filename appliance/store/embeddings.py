"""Face embeddings as stored: 128 little-endian float32 values in a BLOB."""

from __future__ import annotations

import numpy as np

EMBEDDING_DIM = 128


def embedding_to_blob(vec: np.ndarray) -> bytes:
    """The stored form of an embedding; ValueError unless it is 128 finite floats."""
    arr = np.asarray(vec, dtype="<f4").reshape(-1)
    if arr.shape[0] != EMBEDDING_DIM or not np.all(np.isfinite(arr)):
        raise ValueError(f"an embedding must be {EMBEDDING_DIM} finite floats")
    return arr.tobytes()


def blob_to_embedding(blob: bytes) -> np.ndarray:
    """An embedding read back from the store; ValueError if the BLOB has the wrong size."""
    arr = np.frombuffer(blob, dtype="<f4")
    if arr.shape[0] != EMBEDDING_DIM:
        raise ValueError(f"stored embedding has {arr.shape[0]} values, not {EMBEDDING_DIM}")
    return arr
