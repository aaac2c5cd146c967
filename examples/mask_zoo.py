# examples/mask_zoo.py: the masks after MAE, batched and seeded, and the report that compares them
import torch

import mimkernels as mk

# I-JEPA (in1k_vith14_ep300: 16x16 tokens, 4 targets, 1 context block): masks_enc, masks_pred as ijepa's collator
blocks = mk.multiblock_mask(128, seed=0)                       # variant="fixed"; "official" replicates upstream
masks_enc, masks_pred = blocks.to_upstream()                   # lists of (B, K) int64, cut to the batch minimum
video = mk.multiblock_mask_3d(8, seed=0)                       # V-JEPA: 8 blocks over all 8x14x14 tokens
tube = mk.tube_mask(8, seed=0)                                 # VideoMAE: (8, 8*14*14) bool, 90% masked
cells = mk.running_cell_mask(8, seed=0)                        # VideoMAE v2's decoder mask
mask, secondary = mk.uniform_mask(8, seed=0)                   # UM-MAE: one kept token per 2x2, then 25% of those
d2v = mk.data2vec_block_mask(8, seed=0)                        # data2vec 2.0: (8*16, 196), 16 clones per image
attention = torch.rand(8, 196)                                 # e.g. the [CLS] attention of a teacher
attmask = mk.score_mask(attention, 0.3, seed=0)                # AttMask-high: the 30% most attended tokens
dino = mk.dino_collate_masks(2 * 8, seed=0)                    # DINOv2's iBOT masks for 8 images x 2 crops
ratios = torch.tensor([0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
ids_keep, ids_restore, per_sample, kept = mk.random_mask_indices(8, 196, ratios, seed=0)  # a ratio per sample

stats = mk.mask_stats(blocks.targets.any(1))                   # coverage, realised ratios, regions, AvgDist
print(f"I-JEPA: context lists {masks_enc[0].shape}, targets {[m.shape[1] for m in masks_pred]}; "
      f"V-JEPA context {tuple(video.context.shape)}")
print(f"tube {tube.float().mean():.2f}, running cell {cells.float().mean():.2f}, UM-MAE {mask.float().mean():.2f} "
      f"(+{secondary.float().mean():.4f}), data2vec {d2v.float().mean():.2f}, AttMask {attmask.float().mean():.2f}, "
      f"DINO rows masked {int(dino.collated_masks.any(1).sum())}/16, kept per sample {kept.tolist()}")
print({k: round(v, 3) for k, v in stats.summary().items()})
