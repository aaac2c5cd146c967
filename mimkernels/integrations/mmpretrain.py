"""open-mmlab/mmpretrain: `MIMK*` subclasses of mmpretrain's MIM modules, registered in its registries
(integration.md §4).

    custom_imports = dict(imports=["mimkernels.integrations.mmpretrain"], allow_failed_imports=False)
    model = dict(type="MAE", backbone=dict(type="MIMKMAEViT", arch="b", patch_size=16, mask_ratio=0.75),
                 head=dict(type="MIMKMAEPretrainHead", norm_pix=True, patch_size=16,
                           loss=dict(type="PixelReconstructionLoss", criterion="L2")), ...)

Each class subclasses the mmpretrain class it replaces, with the same constructor (plus the options
named below), methods, attributes and state_dict keys, so configs, checkpoints and `isinstance`
checks carry over; only the hot method is overridden, and it falls back to the upstream one for
inputs outside the fused layouts.

MODELS:
- `MIMKPixelReconstructionLoss(criterion, channel=None)`: PixelReconstructionLoss's arithmetic (the
  elementwise L1/L2, the mean over the last dim of 3-D inputs, `(loss * mask).sum() / mask.sum() /
  channel` with **no** eps: an empty mask gives NaN) fused for the two layouts mmpretrain feeds it:
  L2 on (B, L, D) rows with a (B, L) mask (MAE, MaskFeat) and L1 on (B, C, H, W) images with a
  (B, 1, H, W) mask (SimMIM).
- `MIMKMAEPretrainHead(loss, norm_pix=False, patch_size=16, in_channels=3)`: `loss(pred, target, mask)`
  is one `norm_pix_mse_loss` pass (patchify + norm_pix + masked MSE) when the loss is an L2 pixel loss.
- `MIMKSimMIMHead(patch_size, loss)`: `loss(pred, target, mask (B, h, w))` reads the low-resolution
  mask in place (`masked_l1_loss`) instead of upsampling it with repeat_interleave.
- `MIMKHOGGenerator(nbins=9, pool=8, gaussian_window=16, patch_size=16)`: MaskFeat's HOG target from one
  `hog_map` pass; `forward(x)` -> (B, L, C·nbins·u²), u = patch_size // pool, keeping `.out`
  (B, C, nbins, H/pool, W/pool), `.h`, `.w` (so `generate_hog_image` works) and the upstream buffers.
  The patch grid comes from `patch_size`, where upstream hard-codes 14 patches per side (they agree for
  224 to 335 px at pool 8, patch 16); any C and fp16/bf16/uint8 input are accepted.
- `MIMKMAEViT(..., rng="torch", backend="auto")`: MAEViT whose `random_masking` is
  `mimkernels.random_masking`. rng="torch" draws upstream's `torch.rand(N, L)` noise where upstream
  does, so the masks equal upstream's for the same torch RNG state (ties in the noise aside: ours
  break by index); rng="philox" keys each call's masks by one seed drawn from torch's default CPU
  generator, the same masks on every backend and device, eager or compiled.

TRANSFORMS (`transform(results) -> results` adding `results['mask']`, a numpy `int` grid, 1 = masked):
- `MIMKSimMIMMaskGenerator(input_size=192, mask_patch_size=32, model_patch_size=4, mask_ratio=0.6)`;
- `MIMKBEiTMaskGenerator(input_size, num_masking_patches, min_num_patches=4, max_num_patches=None,
  min_aspect=0.3, max_aspect=None, semantics="mmpretrain")`: mmpretrain's variant by default (the class
  it replaces: exact count, the last row and column never masked), or "unilm" (the official one).
Both draw with the compiled CPU kernels, keyed by one seed per call taken from numpy's global RNG (the
source upstream draws from, which mmengine seeds per rank and worker), so masks are reproducible under
mmengine's seeding and distinct across workers; the bits differ from upstream's, the distributions do
not (mimkernels/masking/SPEC.md §6-7).

Importing this module imports mmpretrain and registers the classes in mmpretrain's MODELS / TRANSFORMS
(where configs with `default_scope='mmpretrain'` look) under their `MIMK*` names, force=False.
`register_as_defaults()` registers them under the upstream names instead (force=True), so unchanged
configs build them; `restore_upstream_defaults()` puts mmpretrain's classes back. It changes the registries
only: a class named in Python (`from mmpretrain.models import MAEViT; MAEViT(...)`) stays mmpretrain's
(`mimkernels.integrations.host_tests` also rebinds those names, for running mmpretrain's own tests).
The transforms' repr is upstream's, class name included, so logged pipelines read the same.
"""
from __future__ import annotations

import numpy as np
import torch
from mmpretrain.datasets.transforms import BEiTMaskGenerator, SimMIMMaskGenerator
from mmpretrain.models import HOGGenerator, MAEPretrainHead, MAEViT, PixelReconstructionLoss, SimMIMHead
from mmpretrain.registry import MODELS, TRANSFORMS
from torch import nn

import mimkernels as mk
from mimkernels.checks import check_int
from mimkernels.integrations import _patching

__all__ = ["MIMKPixelReconstructionLoss", "MIMKMAEPretrainHead", "MIMKSimMIMHead", "MIMKHOGGenerator",
           "MIMKMAEViT", "MIMKSimMIMMaskGenerator", "MIMKBEiTMaskGenerator", "register_as_defaults",
           "restore_upstream_defaults"]


def _pixel_loss(module, penalty: type) -> bool:
    """module is mmpretrain's PixelReconstructionLoss (or ours) with that elementwise penalty."""
    return type(module) in (PixelReconstructionLoss, MIMKPixelReconstructionLoss) and type(module.penalty) is penalty


def _l1_without_eps(pred, target, mask, channel: int) -> torch.Tensor:
    """Σ m_up·|pred − target| / Σ m_up / channel, m_up the (B, h, w) mask upsampled to (H, W): SimMIM's
    masked_l1_loss rescaled from its (count + 1e-5) denominator to mmpretrain's (count); an empty mask
    gives NaN, as mmpretrain."""
    cells = (target.shape[2] // mask.shape[1]) * (target.shape[3] // mask.shape[2])
    count = mask.sum(dtype=torch.float64) * cells
    loss = mk.masked_l1_loss(pred, target, mask, channel)
    return (loss * ((count + 1e-5) / count)).to(loss.dtype)


class MIMKPixelReconstructionLoss(PixelReconstructionLoss):
    """mmpretrain PixelReconstructionLoss(criterion 'L1' | 'L2', channel=None), fused for (B, L, D) rows with
    a (B, L) mask (L2) and (B, C, H, W) images with a (B, 1, H, W) mask (L1); upstream's forward otherwise."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None and pred.shape == target.shape:
            if isinstance(self.penalty, nn.MSELoss) and pred.dim() == 3 and mask.shape == pred.shape[:2]:
                return mk.masked_mse_loss(pred, target, mask) / self.channel
            if isinstance(self.penalty, nn.L1Loss) and pred.dim() == 4 and mask.dim() == 4 and \
                    mask.shape == (pred.shape[0], 1, *pred.shape[2:]):
                return _l1_without_eps(pred, target, mask[:, 0], self.channel)
        return super().forward(pred, target, mask)


class MIMKMAEPretrainHead(MAEPretrainHead):
    """mmpretrain MAEPretrainHead(loss, norm_pix=False, patch_size=16, in_channels=3); `loss(pred, target,
    mask)`, target the (B, C, H, W) images and mask (B, L), is one fused `norm_pix_mse_loss` (fp32 whatever
    pred's dtype) when the loss is an L2 PixelReconstructionLoss."""

    def loss(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if _pixel_loss(self.loss_module, nn.MSELoss) and self._fused_layout(pred, target, mask):
            loss = mk.norm_pix_mse_loss(pred, target, mask, self.patch_size, norm_pix=bool(self.norm_pix))
            return loss / self.loss_module.channel
        return super().loss(pred, target, mask)

    def _fused_layout(self, pred, target, mask) -> bool:
        """The layout upstream reads: square (B, in_channels, H, H) images, pred (B, L, p·p·C), mask (B, L)."""
        p, c = self.patch_size, self.in_channels
        if target.dim() != 4 or target.shape[1] != c or target.shape[2] != target.shape[3] or target.shape[2] % p:
            return False
        rows = (target.shape[0], (target.shape[2] // p) ** 2, p * p * c)
        return tuple(pred.shape) == rows and tuple(mask.shape) == rows[:2]


class MIMKSimMIMHead(SimMIMHead):
    """mmpretrain SimMIMHead(patch_size, loss): `loss(pred, target, mask (B, h, w))` reads the mask in place
    instead of upsampling it when the loss is an L1 PixelReconstructionLoss."""

    def loss(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        if _pixel_loss(self.loss_module, nn.L1Loss) and pred.dim() == 4 and pred.shape == target.shape \
                and mask.dim() == 3 and tuple(mask.shape) == (pred.shape[0], pred.shape[2] // p, pred.shape[3] // p) \
                and pred.shape[2] % p == 0 and pred.shape[3] % p == 0:
            return _l1_without_eps(pred, target, mask, self.loss_module.channel)
        return super().loss(pred, target, mask)


class MIMKHOGGenerator(HOGGenerator):
    """mmpretrain HOGGenerator(nbins=9, pool=8, gaussian_window=16) plus patch_size=16: x (B, C, H, W) ->
    (B, L, C·nbins·u²) float32, L = (H/patch_size)(W/patch_size), u = patch_size // pool, in its per-patch
    layout ((c·nbins + k)·u + cy)·u + cx; no gradient. H and W must be multiples of patch_size."""

    def __init__(self, nbins: int = 9, pool: int = 8, gaussian_window: int = 16, patch_size: int = 16) -> None:
        super().__init__(nbins=nbins, pool=pool, gaussian_window=gaussian_window)
        check_int(patch_size, "patch_size", minimum=1)
        if patch_size % pool:
            raise ValueError(f"patch_size {patch_size} must be a multiple of pool {pool}")
        self.patch_size = patch_size
        self.unfold_size = patch_size // pool

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.h, self.w = x.size(-2), x.size(-1)
        if self.h % self.patch_size or self.w % self.patch_size:
            raise ValueError(f"the image {self.h}x{self.w} must be a multiple of patch_size {self.patch_size}")
        self.out = mk.hog_map(x, nbins=self.nbins, pool=self.pool, gaussian_window=self.gaussian_window)
        b, c, k = self.out.shape[:3]
        u, gh, gw = self.unfold_size, self.h // self.patch_size, self.w // self.patch_size
        cells = self.out.reshape(b, c, k, gh, u, gw, u)
        return cells.permute(0, 3, 5, 1, 2, 4, 6).reshape(b, gh * gw, c * k * u * u)

    def extra_repr(self) -> str:
        return f"nbins={self.nbins}, pool={self.pool}, gaussian_window={self.gaussian_window}, " \
               f"patch_size={self.patch_size}"


class MIMKMAEViT(MAEViT):
    """mmpretrain MAEViT(...) plus rng="torch" | "philox" and backend="auto" (module docstring):
    `random_masking(x (B, L, D), mask_ratio)` -> (x_visible, mask (default dtype), ids_restore) by
    `mimkernels.random_masking`. Adds no parameters or buffers."""

    def __init__(self, *args, rng: str = "torch", backend: str = "auto", **kwargs) -> None:
        _patching.check_rng(rng, None)
        super().__init__(*args, **kwargs)
        self.rng, self.backend = rng, backend

    def random_masking(self, x: torch.Tensor, mask_ratio: float = 0.75):
        return _patching.masked_tokens(x, mask_ratio, None, self.rng, None, self.backend)


# ---- data transforms ----

def _call_seed() -> int:
    """One 63-bit seed from numpy's global RNG: what upstream's transforms draw from."""
    return int(np.random.randint(0, 2 ** 63 - 1, dtype=np.int64))


class MIMKSimMIMMaskGenerator(SimMIMMaskGenerator):
    """mmpretrain SimMIMMaskGenerator: results['mask'] (n, n) numpy int, n = input_size / model_patch_size,
    exactly ceil(ratio · cells) mask patches of (mask_patch_size / model_patch_size)² cells each."""

    def __init__(self, input_size: int = 192, mask_patch_size: int = 32, model_patch_size: int = 4,
                 mask_ratio: float = 0.6) -> None:
        mk.simmim_mask(0, input_size, mask_patch_size, model_patch_size, mask_ratio)  # ValueError on bad arguments
        super().__init__(input_size, mask_patch_size, model_patch_size, mask_ratio)

    def transform(self, results: dict) -> dict:
        mask = mk.simmim_mask(1, self.input_size, self.mask_patch_size, self.model_patch_size, self.mask_ratio,
                              seed=_call_seed())
        results["mask"] = mask[0].numpy().astype(int)
        return results

    def __repr__(self) -> str:
        return _upstream_repr(self, SimMIMMaskGenerator)


class MIMKBEiTMaskGenerator(BEiTMaskGenerator):
    """mmpretrain BEiTMaskGenerator: results['mask'] (H, W) numpy int; semantics "mmpretrain" (default,
    exactly num_masking_patches cells, never in the last row or column) or "unilm" (the official
    generator: inclusive bounds, stops early, so it may mask fewer)."""

    def __init__(self, input_size, num_masking_patches: int, min_num_patches: int = 4,
                 max_num_patches: int | None = None, min_aspect: float = 0.3, max_aspect: float | None = None,
                 semantics: str = "mmpretrain") -> None:
        if semantics not in ("mmpretrain", "unilm"):
            raise ValueError(f"semantics must be 'mmpretrain' or 'unilm', got {semantics!r}")
        size = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size, input_size)
        mk.block_mask(0, *size, num_masking_patches, min_num_patches, max_num_patches, min_aspect, max_aspect,
                      variant=semantics)  # ValueError on bad arguments
        super().__init__(size, num_masking_patches, min_num_patches, max_num_patches, min_aspect, max_aspect)
        self.semantics, self.aspect = semantics, (min_aspect, max_aspect)

    def transform(self, results: dict) -> dict:
        mask = mk.block_mask(1, self.height, self.width, self.num_masking_patches, self.min_num_patches,
                             self.max_num_patches, *self.aspect, seed=_call_seed(), variant=self.semantics)
        results["mask"] = mask[0].numpy().astype(int)
        return results

    def __repr__(self) -> str:
        """Upstream's repr; `semantics='unilm'` appended only when it is not the default."""
        text = _upstream_repr(self, BEiTMaskGenerator)
        return text if self.semantics == "mmpretrain" else f"{text[:-1]}, semantics={self.semantics!r})"


def _upstream_repr(transform, upstream: type) -> str:
    """The repr upstream's class gives for these settings: its name (the one `register_as_defaults` puts
    these classes under, so logged pipelines read the same either way) and its fields."""
    return upstream.__repr__(transform).replace(type(transform).__name__, upstream.__name__, 1)


# upstream name -> (registry, upstream class, our class)
_REPLACES = {cls.__name__: (registry, cls, ours) for registry, cls, ours in (
    (MODELS, PixelReconstructionLoss, MIMKPixelReconstructionLoss), (MODELS, MAEPretrainHead, MIMKMAEPretrainHead),
    (MODELS, SimMIMHead, MIMKSimMIMHead), (MODELS, HOGGenerator, MIMKHOGGenerator), (MODELS, MAEViT, MIMKMAEViT),
    (TRANSFORMS, SimMIMMaskGenerator, MIMKSimMIMMaskGenerator), (TRANSFORMS, BEiTMaskGenerator, MIMKBEiTMaskGenerator))}


def register_as_defaults() -> None:
    """Register the MIMK classes under the upstream names too (PixelReconstructionLoss, MAEPretrainHead,
    SimMIMHead, HOGGenerator, MAEViT, SimMIMMaskGenerator, BEiTMaskGenerator), replacing mmpretrain's
    (force=True): unchanged configs then build the fused versions. `restore_upstream_defaults()` undoes it."""
    for name, (registry, _, ours) in _REPLACES.items():
        registry.register_module(name=name, module=ours, force=True)


def restore_upstream_defaults() -> None:
    """Put mmpretrain's own classes back under their names (undoes register_as_defaults)."""
    for name, (registry, upstream, _) in _REPLACES.items():
        registry.register_module(name=name, module=upstream, force=True)


def _register_mimk_names() -> None:
    for registry, _, ours in _REPLACES.values():
        if registry.get(ours.__name__) is not ours:  # force=False: a different class under our name raises
            registry.register_module(module=ours)


_register_mimk_names()
