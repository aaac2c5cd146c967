# examples/dropin_lightly.py: lightly's MAE example flow with mimkernels' token masks and targets
import torch
from torch import nn

from mimkernels.integrations import lightly as mkl   # first: lets lightly (and torchvision) import beside CPU torch
from lightly.models import utils
from lightly.models.modules import MaskedVisionTransformerDecoderTIMM, MaskedVisionTransformerTIMM
from timm.models.vision_transformer import VisionTransformer

torch.manual_seed(0)
vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_classes=0, global_pool="")
backbone = MaskedVisionTransformerTIMM(vit=vit)
decoder_embed = nn.Linear(64, 32)
decoder = MaskedVisionTransformerDecoderTIMM(num_patches=16, num_prefix_tokens=1, embed_dim=32, depth=1, num_heads=4)
prediction_head = nn.Linear(32, 8 * 8 * 3)

images = torch.rand(4, 3, 32, 32)
B, S = images.shape[0], backbone.sequence_length                       # S = 16 patches + cls
idx_keep, idx_mask = mkl.random_token_mask((B, S), 0.75)                # lightly's contract; generator=, noise=
x = decoder_embed(backbone.encode(images=images, idx_keep=idx_keep))
x = utils.set_at_index(x.new_zeros(B, S, x.shape[-1]), idx_keep, x)
pred = prediction_head(utils.get_at_index(decoder(x, idx_mask=idx_mask), idx_mask))
target = mkl.masked_patch_target(images, idx_mask, 8)                   # = get_at_index(patchify(images), idx_mask - 1)
assert torch.equal(target, utils.get_at_index(utils.patchify(images, 8), idx_mask - 1))
loss = nn.MSELoss()(pred, target)
loss.backward()
print(f"loss {loss.item():.4f}, kept {idx_keep.shape[1]} of {S} tokens (cls first)")

mkl.patch_lightly()        # opt in: lightly.models.utils.random_token_mask and patchify become mimkernels'
assert utils.random_token_mask is mkl.random_token_mask
mkl.unpatch_lightly()
