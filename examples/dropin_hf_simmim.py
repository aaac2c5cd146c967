# examples/dropin_hf_simmim.py: transformers' ViTForMaskedImageModeling (SimMIM) with run_mim.py's masks, batched
import copy

import torch
from torch.utils.data import DataLoader

from mimkernels.integrations import SimMIMCollator, patch_hf_simmim
from transformers import ViTConfig, ViTForMaskedImageModeling

config = ViTConfig(image_size=32, patch_size=4, encoder_stride=4, hidden_size=64, num_hidden_layers=2,
                   num_attention_heads=4, intermediate_size=128)
torch.manual_seed(0)
upstream = ViTForMaskedImageModeling(config)
model = patch_hf_simmim(copy.deepcopy(upstream))    # or call hf_simmim_loss(...) in your own loop

examples = [{"pixel_values": torch.rand(3, 32, 32)} for _ in range(8)]   # what run_mim.py's transform yields
collate = SimMIMCollator(input_size=32, mask_patch_size=8, model_patch_size=4, mask_ratio=0.6, seed=0)
for epoch in range(2):
    collate.set_epoch(epoch)
    for batch in DataLoader(examples, batch_size=8, collate_fn=collate):
        out = model(**batch)                        # batch: pixel_values (8, 3, 32, 32), bool_masked_pos (8, 64) int64
        torch.testing.assert_close(out.loss, upstream(**batch).loss)
        out.loss.backward()
print(f"last loss {out.loss.item():.6f}, masked {batch['bool_masked_pos'].sum(1).tolist()} of 64 tokens")
