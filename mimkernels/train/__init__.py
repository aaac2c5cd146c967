"""The reference trainer: `python -m mimkernels.train --help` (layout: data, vit, ops, methods, probe, viz)."""
