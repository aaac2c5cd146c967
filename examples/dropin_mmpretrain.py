# examples/dropin_mmpretrain.py: mmpretrain's MAE from a config, with the MIMK backbone and head
import torch

import mimkernels.integrations.mmpretrain as mkm   # registers MIMK* in mmpretrain's registries (imports mmpretrain)
from mmpretrain.registry import MODELS

# in a config file: custom_imports = dict(imports=["mimkernels.integrations.mmpretrain"], allow_failed_imports=False)
model = dict(type="MAE",
             backbone=dict(type="MIMKMAEViT", arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128),
                           img_size=32, patch_size=8, mask_ratio=0.75),
             neck=dict(type="MAEPretrainDecoder", num_patches=16, patch_size=8, embed_dim=64, decoder_embed_dim=32,
                       decoder_depth=1, decoder_num_heads=4, mlp_ratio=2),
             head=dict(type="MIMKMAEPretrainHead", norm_pix=True, patch_size=8,
                       loss=dict(type="PixelReconstructionLoss", criterion="L2")))
torch.manual_seed(0)
mae = MODELS.build(model)
mae.init_weights()
imgs = torch.rand(4, 3, 32, 32)
loss = mae.loss(imgs, [])["loss"]
loss.backward()
print(f"{type(mae.backbone).__name__} + {type(mae.head).__name__}: loss {loss.item():.4f}")

mkm.register_as_defaults()      # unchanged configs ("MAEViT", "MAEPretrainHead", ...) now build the MIMK classes
try:
    head = MODELS.build(dict(type="MAEPretrainHead", patch_size=8, loss=dict(type="PixelReconstructionLoss", criterion="L2")))
    assert type(head) is mkm.MIMKMAEPretrainHead
finally:
    mkm.restore_upstream_defaults()
