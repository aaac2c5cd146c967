"""The mask report of every generator at its upstream defaults (mask_zoo/SPEC.md §10): coverage heatmaps
(PNG) and one summary table, written to benchmarks/results/masks/. Run (CPU, ~1 min):

    PYTHONPATH=$PWD python -m benchmarks.mask_report [--masks 20000] [--only name,...]

Each row draws `--masks` masks with one seed (in batches of 1024, sample_offset advancing, which gives the
masks of one big batch) and reports mimkernels.mask_stats of them. Biases of an upstream generator show
here: a coverage hole or a rim that is never masked.
"""
from __future__ import annotations

import argparse
import pathlib

import torch

import mimkernels as mk

OUT = pathlib.Path(__file__).resolve().parent / "results" / "masks"
CHUNK = 1024

def _dino_collates(batch: int, seed: int, offset: int, version: str) -> torch.Tensor:
    """DINO's masks come per collate (its strata span one batch): collates of 128 crops (64 images x 2 global
    crops), collate k seeded with derive_seed(seed, k) as DinoMaskCollator does."""
    return torch.cat([mk.dino_collate_masks(min(DINO_COLLATE, batch - s), version=version,
                                            seed=mk.rng.derive_seed(seed, (offset + s) // DINO_COLLATE)).collated_masks
                      for s in range(0, batch, DINO_COLLATE)])


DINO_COLLATE = 128
JEPA_COLLATE = 128  # ijepa#60 is about the lists of a batch of 128 cut to their minimum


def _jepa_context_lists(batch: int, seed: int, offset: int, variant: str, three_d: bool) -> torch.Tensor:
    """The cells in the encoder's context list after upstream's cut to the batch minimum (to_upstream), per
    collate of 128: (B, N) bool, True = the encoder sees the cell. Where variant="official" never lists a
    position (ijepa#60's hole, jepa#50's late frames), its coverage is ~0."""
    draw = mk.multiblock_mask_3d if three_d else mk.multiblock_mask
    out = []
    for s in range(0, batch, JEPA_COLLATE):
        m = draw(min(JEPA_COLLATE, batch - s), variant=variant,
                 seed=mk.rng.derive_seed(seed, (offset + s) // JEPA_COLLATE))
        ids = m.to_upstream()[0][0]
        out.append(torch.zeros(ids.shape[0], m.context[0, 0].numel(), dtype=torch.bool).scatter_(1, ids, True))
    return torch.cat(out)
# name -> (label: the upstream setting it matches, draw(batch, seed, sample_offset) -> masks, grid or None)
GENERATORS = {
    "mae_random": ("MAE random masking, 14x14, ratio 0.75 (facebookresearch/mae)",
                   lambda b, seed, off: mk.random_mask_indices(b, 196, 0.75, seed=seed, sample_offset=off)[2],
                   (14, 14)),
    "simmim": ("SimMIM 192/32/4/0.6, 48x48 (microsoft/SimMIM)",
               lambda b, seed, off: mk.simmim_mask(b, seed=seed, sample_offset=off), None),
    "block_maskfeat": ("block mask MaskFeat 78/15, 14x14 (unilm / SlowFast)",
                       lambda b, seed, off: mk.block_mask(b, seed=seed, sample_offset=off), None),
    "block_beit": ("block mask BEiT 75/16, 14x14 (unilm)",
                   lambda b, seed, off: mk.block_mask(b, num_masking_patches=75, min_num_patches=16, seed=seed,
                                                      sample_offset=off), None),
    "block_mmpretrain": ("block mask mmpretrain BEiTMaskGenerator 75/16 (exclusive bounds)",
                         lambda b, seed, off: mk.block_mask(b, num_masking_patches=75, min_num_patches=16,
                                                            variant="mmpretrain", seed=seed, sample_offset=off), None),
    "tube": ("VideoMAE tube, 16 frames / tubelet 2 = 8 x 14 x 14, ratio 0.9 (MCG-NJU/VideoMAE)",
             lambda b, seed, off: mk.tube_mask(b, seed=seed, sample_offset=off), (8, 14, 14)),
    "running_cell": ("VideoMAE v2 running cell, 8 x 14 x 14, ratio 0.5 (OpenGVLab/VideoMAEv2 decoder mask)",
                     lambda b, seed, off: mk.running_cell_mask(b, seed=seed, sample_offset=off), (8, 14, 14)),
    "uniform": ("UM-MAE uniform sampling, 16x16, ratio 0.75 (implus/UM-MAE)",
                lambda b, seed, off: mk.uniform_mask(b, seed=seed, sample_offset=off)[0], (16, 16)),
    "uniform_secondary": ("UM-MAE uniform + secondary masking of 25% of the visible tokens",
                          lambda b, seed, off: torch.logical_or(*mk.uniform_mask(b, seed=seed, sample_offset=off)),
                          (16, 16)),
    "dino_v2": ("DINOv2 collate, 16x16, ratios 0.1-0.5 on half the samples, collates of 128 (facebookresearch/dinov2)",
                lambda b, seed, off: _dino_collates(b, seed, off, "v2"), (16, 16)),
    "dino_v3": ("DINOv3 collate, 16x16, stratum maxima, completed masks, collates of 128 (facebookresearch/dinov3)",
                lambda b, seed, off: _dino_collates(b, seed, off, "v3"), (16, 16)),
    "data2vec": ("data2vec 2.0 block masks, 14x14, mask_prob 0.8, blocks of 3 mark the visible tokens (fairseq)",
                 lambda b, seed, off: mk.data2vec_block_mask(b, clone_batch=1, seed=seed, sample_offset=off), (14, 14)),
    "ijepa_targets": ("I-JEPA target blocks (union of 4), 16x16, in1k_vith14_ep300 (facebookresearch/ijepa), fixed",
                      lambda b, seed, off: mk.multiblock_mask(b, seed=seed, sample_offset=off).targets.any(1), None),
    "ijepa_targets_official": ("I-JEPA target blocks (union of 4), variant='official' (exclusive randint bounds)",
                               lambda b, seed, off: mk.multiblock_mask(b, variant="official", seed=seed,
                                                                       sample_offset=off).targets.any(1), None),
    "ijepa_context_official": ("I-JEPA context list after the cut to the batch minimum, B = 128, variant='official' "
                               "(ijepa#60)", lambda b, seed, off: _jepa_context_lists(b, seed, off, "official", False),
                               (16, 16)),
    "ijepa_context_fixed": ("I-JEPA context list after the cut to the batch minimum, B = 128, fixed",
                            lambda b, seed, off: _jepa_context_lists(b, seed, off, "fixed", False), (16, 16)),
    "vjepa_context_official": ("V-JEPA context list after the cut, 8x14x14, B = 128, variant='official' (jepa#50)",
                               lambda b, seed, off: _jepa_context_lists(b, seed, off, "official", True), (8, 14, 14)),
    "vjepa_context_fixed": ("V-JEPA context list after the cut, 8x14x14, B = 128, fixed",
                            lambda b, seed, off: _jepa_context_lists(b, seed, off, "fixed", True), (8, 14, 14)),
}


def draw(name: str, masks: int, seed: int = 0) -> torch.Tensor:
    """`masks` masks of generator `name`, drawn in chunks with advancing sample_offset."""
    _, fn, grid = GENERATORS[name]
    parts = [fn(min(CHUNK, masks - start), seed, start) for start in range(0, masks, CHUNK)]
    out = torch.cat(parts)
    return out.reshape(out.shape[0], *grid) if grid else out


def report(masks: int, only: list[str]) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = ["| generator | masks | grid | masked fraction, mean (min–max) | regions, mean (min–max) | AvgDist "
            "(cells) | coverage min / max | heatmap |", "|---|---|---|---|---|---|---|---|"]
    for name, (label, _, _) in GENERATORS.items():
        if only and name not in only:
            continue
        stats = mk.mask_stats(draw(name, masks))
        stats.save_heatmap(OUT / f"{name}.png", label, what="listed" if "context" in name else "masked")
        s = stats.summary()
        grid = "×".join(str(d) for d in stats.coverage.shape)
        rows.append(f"| {label} | {s['masks']} | {grid} | {s['masked_fraction_mean']:.4f} "
                    f"({s['masked_fraction_min']:.3f}–{s['masked_fraction_max']:.3f}) | {s['blocks_mean']:.2f} "
                    f"({s['blocks_min']:.0f}–{s['blocks_max']:.0f}) | {s['avg_dist_mean']:.3f} | "
                    f"{s['coverage_min']:.4f} / {s['coverage_max']:.4f} | [{name}.png]({name}.png) |")
        print(rows[-1], flush=True)
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="mask report of every generator (module docstring)")
    parser.add_argument("--masks", type=int, default=20000)
    parser.add_argument("--only", default="", help="comma-separated generator names")
    args = parser.parse_args()
    table = report(args.masks, [n for n in args.only.split(",") if n])
    head = (f"# Mask report: every generator at its upstream defaults\n\n{args.masks} masks each, seed 0. "
            f"Regenerate: `PYTHONPATH=$PWD python -m benchmarks.mask_report --masks {args.masks}`.\n"
            "Coverage = the fraction of masks hiding a position; regions = face-connected masked regions; "
            "AvgDist = SimMIM's metric in cells (mask_zoo/SPEC.md §10). In the \"context list\" rows a True cell is "
            "one the encoder's index list holds after upstream's cut to the batch minimum.\n\n")
    if not args.only:
        (OUT / "masks.md").write_text(head + table)
