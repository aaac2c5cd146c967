"""mmpretrain-style target/loss modules, registered in mmengine's MODELS registry under `MIMK*` names
(integration.md §4).

    custom_imports = dict(imports=["mimkernels.integrations.mmpretrain"], allow_failed_imports=False)
    model = dict(..., head=dict(type="MIMKMAEPretrainHead", norm_pix=True, patch_size=16,
                                loss=dict(type="PixelReconstructionLoss", criterion="L2")))

- `MIMKPixelReconstructionLoss(criterion, channel=None)`: PixelReconstructionLoss's forward — the
  elementwise L1/L2, the mean over the last dim of 3-D inputs, `(loss * mask).sum() / mask.sum() /
  channel` with **no** eps (an empty mask gives NaN) — fused for the two layouts mmpretrain uses
  (L2 on (B, L, D) rows: MAE, MaskFeat; L1 on (B, C, H, W) images: SimMIM), eager otherwise.
- `MIMKMAEPretrainHead(loss, norm_pix=False, patch_size=16)`: `loss(pred, target_imgs, mask)` is
  `norm_pix_mse_loss` (patchify + norm_pix + masked MSE in one pass) for an L2 pixel loss.
- `MIMKSimMIMHead(patch_size, loss)`: `forward(pred, target, mask (B, h, w))` reads the low-resolution
  mask in place (`masked_l1_loss`) instead of upsampling it with repeat_interleave.
- `MIMKHOGGenerator(nbins=9, pool=8, gaussian_window=16)`: MaskFeat's HOG target, `forward(x)` ->
  (B, L, C·nbins·u²) from one `hog_map` pass, keeping `.out` (B, C, nbins, H/pool, W/pool) and
  `.h`, `.w` as upstream; the patch grid comes from the image (`patch_size=16`, where upstream
  hard-codes 14 patches per side). `generate_hog_image` (visualisation) is not provided.

Data transforms (TRANSFORMS), `transform(results) -> results` adding `results['mask']`, a numpy int64
grid, 1 = masked, as upstream:
- `MIMKSimMIMMaskGenerator(input_size=192, mask_patch_size=32, model_patch_size=4, mask_ratio=0.6)`;
- `MIMKBEiTMaskGenerator(input_size, num_masking_patches, min_num_patches=4, max_num_patches=None,
  min_aspect=0.3, max_aspect=None, semantics="mmpretrain")`: mmpretrain's variant by default (the class
  it replaces: exact count, the last row and column never masked), or "unilm" (the official one).
Both draw with the compiled CPU kernels (`backend="auto"`), keyed by one seed per call taken from
numpy's global RNG — the source upstream draws from, which mmengine seeds per rank and worker —
so masks are reproducible under mmengine's seeding and distinct across workers; the bits differ
from upstream's, the distributions do not (spec/masking.md §4-5).

Registered on import into mmpretrain's MODELS / TRANSFORMS when mmpretrain imports, else into
mmengine's root registries (mmpretrain's are their children, so its configs find them), force=False.
`register_as_defaults()` also registers them under the upstream names, force=True.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

import mimkernels as mk

__all__ = ["MIMKPixelReconstructionLoss", "MIMKMAEPretrainHead", "MIMKSimMIMHead", "MIMKHOGGenerator",
           "MIMKSimMIMMaskGenerator", "MIMKBEiTMaskGenerator", "register_as_defaults"]

_PIXEL_LOSS_NAMES = ("PixelReconstructionLoss", "MIMKPixelReconstructionLoss")


def _registry(kind: str = "MODELS"):
    """mmpretrain's MODELS or TRANSFORMS registry, else mmengine's root one of that kind."""
    try:
        from mmpretrain import registry
    except Exception:  # mmpretrain absent, or its own imports (mmcv) fail
        from mmengine import registry
    return getattr(registry, kind)


class MIMKPixelReconstructionLoss(nn.Module):
    """mmpretrain PixelReconstructionLoss(criterion 'L1' | 'L2', channel=None), fused where it can be."""

    def __init__(self, criterion: str, channel: int | None = None) -> None:
        super().__init__()
        if criterion not in ("L1", "L2"):
            raise NotImplementedError(f"PixelReconstructionLoss supports L1 and L2 loss, got {criterion!r}")
        self.criterion, self.channel = criterion, channel if channel is not None else 1

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None and self.criterion == "L2" and pred.dim() == 3 and mask.dim() == 2:
            return mk.masked_mse_loss(pred, target, mask) / self.channel
        if mask is not None and self.criterion == "L1" and pred.dim() == 4 and mask.dim() in (3, 4):
            return _l1_without_eps(pred, target, mask.reshape(mask.shape[0], *mask.shape[-2:]), self.channel)
        penalty = (pred - target).abs() if self.criterion == "L1" else (pred - target) ** 2
        if penalty.dim() == 3:
            penalty = penalty.mean(dim=-1)
        if mask is None:
            return penalty.mean()
        return (penalty * mask).sum() / mask.sum() / self.channel

    def extra_repr(self) -> str:
        return f"criterion={self.criterion!r}, channel={self.channel}"


def _l1_without_eps(pred, target, mask, channel: int) -> torch.Tensor:
    """Σ m·|pred − target| / Σ m_up / channel, mask (B, h, w) at any resolution dividing (H, W): SimMIM's
    masked_l1_loss rescaled from its (count + 1e-5) denominator to mmpretrain's (count); an empty
    mask gives NaN, as mmpretrain."""
    cells = (target.shape[2] // mask.shape[1]) * (target.shape[3] // mask.shape[2])
    count = mask.sum(dtype=torch.float64) * cells
    loss = mk.masked_l1_loss(pred, target, mask, channel)
    return (loss * ((count + 1e-5) / count)).to(loss.dtype)


def _build_loss(loss):
    """The loss module of a head config: pixel losses become MIMKPixelReconstructionLoss, others are
    built by the registry."""
    if isinstance(loss, nn.Module):
        return loss
    cfg = dict(loss)
    if cfg.get("type") in _PIXEL_LOSS_NAMES:
        cfg.pop("type")
        return MIMKPixelReconstructionLoss(**cfg)
    return _registry().build(cfg)


def _fusable_l2(loss_module) -> bool:
    return isinstance(loss_module, MIMKPixelReconstructionLoss) and loss_module.criterion == "L2"


class MIMKMAEPretrainHead(nn.Module):
    """mmpretrain MAEPretrainHead(loss, norm_pix=False, patch_size=16); `loss(pred, target, mask)` with
    target the (B, C, H, W) images is one fused `norm_pix_mse_loss` for an L2 pixel loss."""

    def __init__(self, loss: dict, norm_pix: bool = False, patch_size: int = 16) -> None:
        super().__init__()
        self.norm_pix, self.patch_size = norm_pix, patch_size
        self.loss_module = _build_loss(loss)

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        return mk.patchify(imgs, self.patch_size)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        return mk.unpatchify(x, self.patch_size, 3)

    def construct_target(self, target: torch.Tensor) -> torch.Tensor:
        if self.norm_pix:
            return mk.patch_norm_target(target, self.patch_size).to(torch.promote_types(target.dtype, torch.float32))
        return mk.patchify(target, self.patch_size)

    def loss(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if _fusable_l2(self.loss_module):
            loss = mk.norm_pix_mse_loss(pred, target, mask, self.patch_size, norm_pix=bool(self.norm_pix))
            return loss / self.loss_module.channel
        return self.loss_module(pred, self.construct_target(target), mask)


class MIMKSimMIMHead(nn.Module):
    """mmpretrain SimMIMHead(patch_size, loss): forward(pred, target, mask (B, h, w)) without upsampling the mask."""

    def __init__(self, patch_size: int, loss: dict) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.loss = _build_loss(loss)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if isinstance(self.loss, MIMKPixelReconstructionLoss) and self.loss.criterion == "L1":
            return _l1_without_eps(pred, target, mask, self.loss.channel)
        mask = mask.repeat_interleave(self.patch_size, 1).repeat_interleave(self.patch_size, 2).unsqueeze(1)
        return self.loss(pred, target, mask.contiguous())


class MIMKHOGGenerator(nn.Module):
    """mmpretrain HOGGenerator(nbins=9, pool=8, gaussian_window=16): x (B, C, H, W) -> (B, L, C·nbins·u²)
    float32, u = patch_size // pool, in its per-patch layout ((c·nbins + k)·u + cy)·u + cx; no gradient."""

    def __init__(self, nbins: int = 9, pool: int = 8, gaussian_window: int = 16, patch_size: int = 16) -> None:
        super().__init__()
        self.nbins, self.pool, self.gaussian_window, self.patch_size = nbins, pool, gaussian_window, patch_size

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.h, self.w = x.size(-2), x.size(-1)
        if self.patch_size % self.pool or self.h % self.patch_size or self.w % self.patch_size:
            raise ValueError(f"patch_size {self.patch_size} must be a multiple of pool {self.pool} and divide "
                             f"the image {self.h}x{self.w}")
        self.out = mk.hog_map(x, nbins=self.nbins, pool=self.pool, gaussian_window=self.gaussian_window)
        b, c, k, _, _ = self.out.shape
        u, gh, gw = self.patch_size // self.pool, self.h // self.patch_size, self.w // self.patch_size
        cells = self.out[:, :, :, :gh * u, :gw * u].reshape(b, c, k, gh, u, gw, u)
        return cells.permute(0, 3, 5, 1, 2, 4, 6).reshape(b, gh * gw, c * k * u * u)

    def extra_repr(self) -> str:
        return f"nbins={self.nbins}, pool={self.pool}, gaussian_window={self.gaussian_window}"


# ---- data transforms ----

def _call_seed() -> int:
    """One 63-bit seed from numpy's global RNG: what upstream's transforms draw from."""
    return int(np.random.randint(0, 2 ** 63 - 1, dtype=np.int64))


class _MaskTransform:
    """mmcv BaseTransform's protocol: transform(results) -> results, also as __call__."""

    def mask(self) -> torch.Tensor:
        raise NotImplementedError

    def transform(self, results: dict) -> dict:
        results["mask"] = self.mask().to(torch.int64).numpy()
        return results

    def __call__(self, results: dict) -> dict:
        return self.transform(results)


class MIMKSimMIMMaskGenerator(_MaskTransform):
    """mmpretrain SimMIMMaskGenerator: results['mask'] (n, n) int64, n = input_size / model_patch_size."""

    def __init__(self, input_size: int = 192, mask_patch_size: int = 32, model_patch_size: int = 4,
                 mask_ratio: float = 0.6) -> None:
        mk.simmim_mask(0, input_size, mask_patch_size, model_patch_size, mask_ratio)  # validates the arguments
        self.input_size, self.mask_patch_size = input_size, mask_patch_size
        self.model_patch_size, self.mask_ratio = model_patch_size, mask_ratio

    def mask(self) -> torch.Tensor:
        return mk.simmim_mask(1, self.input_size, self.mask_patch_size, self.model_patch_size, self.mask_ratio,
                              seed=_call_seed())[0]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input_size={self.input_size}, mask_patch_size={self.mask_patch_size}, "
                f"model_patch_size={self.model_patch_size}, mask_ratio={self.mask_ratio})")


class MIMKBEiTMaskGenerator(_MaskTransform):
    """mmpretrain BEiTMaskGenerator: results['mask'] (H, W) int64; semantics "mmpretrain" (default) or "unilm"."""

    def __init__(self, input_size, num_masking_patches: int, min_num_patches: int = 4,
                 max_num_patches: int | None = None, min_aspect: float = 0.3, max_aspect: float | None = None,
                 semantics: str = "mmpretrain") -> None:
        if semantics not in ("mmpretrain", "unilm"):
            raise ValueError(f"semantics must be 'mmpretrain' or 'unilm', got {semantics!r}")
        self.height, self.width = (input_size, input_size) if not isinstance(input_size, (tuple, list)) \
            else tuple(input_size)
        self.kwargs = dict(num_masking_patches=num_masking_patches, min_num_patches=min_num_patches,
                           max_num_patches=max_num_patches, min_aspect=min_aspect, max_aspect=max_aspect,
                           variant=semantics)
        mk.block_mask(0, self.height, self.width, **self.kwargs)  # validates the arguments

    def mask(self) -> torch.Tensor:
        return mk.block_mask(1, self.height, self.width, **self.kwargs, seed=_call_seed())[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_size={(self.height, self.width)}, {self.kwargs})"


_CLASSES = {"PixelReconstructionLoss": MIMKPixelReconstructionLoss, "MAEPretrainHead": MIMKMAEPretrainHead,
            "SimMIMHead": MIMKSimMIMHead, "HOGGenerator": MIMKHOGGenerator}
_TRANSFORMS = {"SimMIMMaskGenerator": MIMKSimMIMMaskGenerator, "BEiTMaskGenerator": MIMKBEiTMaskGenerator}


def _register(force: bool, upstream_names: bool) -> None:
    for kind, classes in (("MODELS", _CLASSES), ("TRANSFORMS", _TRANSFORMS)):
        registry = _registry(kind)
        for upstream, cls in classes.items():
            name = upstream if upstream_names else cls.__name__
            if force or registry.get(name) is not cls:
                registry.register_module(name=name, module=cls, force=force)


def register_as_defaults() -> None:
    """Also register the classes under the upstream names (PixelReconstructionLoss, MAEPretrainHead,
    SimMIMHead, HOGGenerator, SimMIMMaskGenerator, BEiTMaskGenerator), replacing mmpretrain's (force=True): existing configs then build the fused versions."""
    _register(force=True, upstream_names=True)


_register(force=False, upstream_names=False)
