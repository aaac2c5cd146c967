# examples/mask_collator.py: a batch of BEiT/MaskFeat block masks per step, drawn in the DataLoader
import torch
from torch.utils.data import DataLoader, TensorDataset

from mimkernels import MaskCollator, nn as mknn

dataset = TensorDataset(torch.rand(32, 3, 224, 224))
collate = MaskCollator(mknn.BlockMaskGenerator(num_masking_patches=75, min_num_patches=16), seed=0)
loader = DataLoader(dataset, batch_size=8, num_workers=2, collate_fn=collate)
for epoch in range(2):
    collate.set_epoch(epoch)                        # masks differ across epochs, steps, workers and ranks
    for (images,), masks in loader:                 # masks (8, 14, 14) bool, True = masked
        assert masks.shape == (8, 14, 14) and masks.dtype == torch.bool
print(f"last batch: {images.shape[0]} images, masked patches per image {masks.sum((1, 2)).tolist()}")
