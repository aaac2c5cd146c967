"""The mask zoo's modules and DataLoader collators (re-exported by mimkernels.nn)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------


# ---- VideoMAE tube and running cell ---------------------------------------------------------------


# ---- UM-MAE uniform masking -----------------------------------------------------------------------


# ---- data2vec 2.0 block masks ----------------------------------------------------------------------


# ---- score-guided masks ---------------------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
