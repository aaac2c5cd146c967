"""The five pre-training methods, each the same three steps on one small ViT:

    corrupt(x)  -> what the encoder may not see (a token mask, a pixel mask, a frequency filter)
    target(x)   -> what the model must predict
    loss(...)   -> how far the prediction is

Every MIM op goes through `self.ops` (train/ops.py), so `--ops torch|mimkernels` swaps them and
nothing else. Hyper-parameters are the papers', scaled from 224 px / patch 16 to this image size
and patch (`settings()` prints them):

| method   | mask / corruption                     | encoder input              | target                                  | loss |
|----------|---------------------------------------|----------------------------|-----------------------------------------|------|
| MAE      | random per token, 75%                 | visible patches only       | per-patch-normalized pixels             | MSE on masked patches |
| SimMIM   | random (2·patch)² cells, 60%          | all patches, mask token    | raw pixels                              | L1 on masked pixels |
| MaskFeat | random per token, 40% (paper: block)  | all patches, mask token    | HOG of 8 px cells, standardized         | MSE on masked patches |
| MFM      | low- or high-pass disc, r = 16/224·S  | filtered image             | the image (graded in frequency space)   | distance on removed frequencies |
| PixMIM   | random per token, 75%                 | visible patches only       | low-pass (r = 40/224·S) pixels, per-patch-normalized | MSE on masked patches |

Departures from the papers: PixMIM trains on MAE's random resized crop (`PixMIM.simple_crop`); MaskFeat
uses a random mask and unnormalized, standardized HOG of 8 px cells (its class attributes say why).
The defaults tuned at this scale (`base_lr`, PixMIM's crop, MaskFeat's head init and target, MFM's grading) keep a
one-line reason here; the runs that chose them are in benchmarks/results/cpu/train_probe.md.

Images arrive as (B, 3, H, W) float in [0, 1] and are normalized with the ImageNet statistics,
as every official pipeline does (MFM filters the [0, 1] image first, as the official code).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

import mimkernels
from mimkernels.train import data
from mimkernels.train.ops import Ops
from mimkernels.train.vit import Decoder, Encoder, LinearHead

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(imgs: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> (x - mean_c) / std_c."""
    mean = imgs.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = imgs.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (imgs - mean) / std


def denormalize(imgs: torch.Tensor) -> torch.Tensor:
    mean = imgs.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = imgs.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return imgs * std + mean


def pixel_mask(mask: torch.Tensor, grid: tuple[int, int], patch_size: int) -> torch.Tensor:
    """(B, L) patch mask, 1 = masked -> (B, 1, H, W) float pixel mask."""
    m = mask.float().view(-1, 1, *grid)
    return m.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)


def mean_row_loss(rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """masked_mse_loss of the mean masked row (the best constant) against rows (B, L, D); mask (B, L), 1 = masked."""
    rows, mask = rows.float(), mask.float()
    mean = (rows * mask[..., None]).sum((0, 1)) / mask.sum()
    return mimkernels.masked_mse_loss(mean.expand_as(rows), rows, mask, backend="torch")


@dataclass
class ModelConfig:
    """The ViT: embedding width, depth and heads of the encoder and of MAE's decoder."""

    dim: int = 128
    depth: int = 4
    heads: int = 4
    decoder_dim: int = 64
    decoder_depth: int = 2


@dataclass
class Step:
    """One training step's loss and the tensors the pictures need (train/viz.py)."""

    loss: torch.Tensor
    tensors: dict = field(default_factory=dict)


class Method(nn.Module):
    """A pre-training method: `forward(imgs, seed, sample_offset)` runs corrupt -> encode -> target -> loss.

    seed: the Philox key of this step's random ops; sample_offset: the index of this batch's first
    sample in the global batch (DDP rank r passes r·B), so every rank draws distinct masks and a run
    on N ranks draws the masks of one process with the whole batch.
    """

    name = ""
    needs: tuple[str, ...] = ()   # the MIM ops this method calls
    crop_scale = (0.2, 1.0)        # area range of the random resized crop
    # default --lr (per 256 images): 40x MAE's 1.5e-4 for 10-epoch runs (train_probe.md, "Defaults tuned")
    base_lr = 6e-3

    def __init__(self, ops: Ops, img_size: int, patch_size: int, model: ModelConfig):
        super().__init__()
        self.ops, self.img_size, self.patch_size = ops, img_size, patch_size
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.patch_dim = patch_size * patch_size * 3

    def settings(self) -> dict:
        """The method's hyper-parameters at this image size (printed at start, saved in config.json)."""
        return {}

    def augment(self, imgs: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """The method's data augmentation: random resized crop (area in crop_scale) + flip."""
        return data.random_resized_crop(imgs, g, scale=self.crop_scale)

    trivial = ""   # what the trivial predictor of `trivial_loss` predicts, for metrics.json and the summary

    @torch.no_grad()
    def trivial_loss(self, step: Step) -> torch.Tensor:
        """The method's loss, on this step's batch, of a predictor that learned nothing of the image's
        content (`trivial` says which); the trained model must beat it. Eager ops, as the pictures."""
        raise NotImplementedError

    @torch.no_grad()
    def graded_rows(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction, target) rows (N, D) of the graded patches in the loss's space, for `spread`."""
        raise NotImplementedError

    @torch.no_grad()
    def spread(self, step: Step) -> tuple[float, float]:
        """(prediction, target) spread across the graded patches: the std over patches of each feature,
        averaged over features. A prediction that does not vary from patch to patch has spread 0."""
        pred, target = self.graded_rows(step)
        return pred.float().std(0).mean().item(), target.float().std(0).mean().item()

    def encoder_rows(self, imgs: torch.Tensor) -> torch.Tensor:
        """Patch rows of whole images, the encoder's input for the linear probe. The probe and the
        pictures are instruments, the same for both --ops: they use the eager patchify."""
        return mimkernels.patchify(normalize(imgs), self.patch_size, backend="torch")


class MAE(Method):
    """He et al. 2022: drop 75% of the patches, encode the rest, decode all, regress the normalized
    pixels of the dropped ones."""

    name = "mae"
    needs = ("random_mask_indices", "gather_patches", "unshuffle_tokens", "norm_pix_mse_loss", "patchify",
             "patch_norm_target")
    mask_ratio = 0.75

    def __init__(self, ops: Ops, img_size: int, patch_size: int, model: ModelConfig):
        super().__init__(ops, img_size, patch_size, model)
        self.encoder = Encoder(self.grid, self.patch_dim, model.dim, model.depth, model.heads)
        self.decoder = Decoder(self.grid, model.dim, self.patch_dim, model.decoder_dim, model.decoder_depth, model.heads)

    def settings(self) -> dict:
        keep = int(self.num_patches * (1 - self.mask_ratio))
        return {"mask_ratio": self.mask_ratio, "visible_patches": f"{keep} of {self.num_patches}", "norm_pix": True,
                "decoder": f"{len(self.decoder.blocks)} blocks x {self.decoder.embed.out_features}"}

    def corrupt(self, x: torch.Tensor, seed: int, sample_offset: int):
        return self.ops.random_mask_indices(x.shape[0], self.num_patches, self.mask_ratio, seed=seed,
                                            sample_offset=sample_offset, device=x.device)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The image whose per-patch-normalized pixels are regressed (norm_pix_mse_loss normalizes)."""
        return x

    def forward(self, imgs: torch.Tensor, seed: int, sample_offset: int = 0) -> Step:
        x = normalize(imgs)
        ids_keep, ids_restore, mask = self.corrupt(x, seed, sample_offset)
        latent = self.encoder(self.ops.gather_patches(x, ids_keep, self.patch_size), ids=ids_keep)  # visible only
        tokens = self.ops.unshuffle_tokens(self.decoder.embed(latent), ids_restore, self.decoder.mask_token)
        pred = self.decoder(tokens)                                                   # (B, L, p·p·3)
        target = self.target(x)
        loss = self.ops.norm_pix_mse_loss(pred, target, mask, self.patch_size)
        return Step(loss, {"mask": mask, "target": target, "pred": pred})

    trivial = "the batch's mean per-patch-normalized masked patch"

    def normalized_target(self, step: Step) -> torch.Tensor:
        """(B, L, p·p·3) the per-patch-normalized target rows the loss compares the prediction with."""
        return mimkernels.patch_norm_target(step.tensors["target"].float(), self.patch_size, backend="torch")

    @torch.no_grad()
    def trivial_loss(self, step: Step) -> torch.Tensor:
        return mean_row_loss(self.normalized_target(step), step.tensors["mask"])

    @torch.no_grad()
    def graded_rows(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        graded = step.tensors["mask"].bool()
        return step.tensors["pred"][graded], self.normalized_target(step)[graded]


class PixMIM(MAE):
    """Liu et al. 2023: MAE with a low-pass-filtered target (and, with simple_crop, PixMIM's simple
    resized crop instead of MAE's random resized crop)."""

    name = "pixmim"
    needs = MAE.needs + ("lowfreq_target",)
    # The paper's simple resized crop is nearly no augmentation at 32 px (a +-1 px shift): its probe was
    # the random encoder's (train_probe.md, "Defaults tuned"). True restores it.
    simple_crop = False

    def __init__(self, ops: Ops, img_size: int, patch_size: int, model: ModelConfig):
        super().__init__(ops, img_size, patch_size, model)
        self.radius = 40 * img_size / 224                     # 40 at 224 px
        self.crop_padding = max(1, round(4 * img_size / 224))  # reflect padding 4 at 224 px

    def settings(self) -> dict:
        crop = {"crop": f"simple, padding {self.crop_padding}"} if self.simple_crop else {"crop": "random resized"}
        return {**super().settings(), "lowfreq_radius": round(self.radius, 3), **crop}

    def augment(self, imgs: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """MAE's random resized crop + flip, or PixMIM's simple resized crop (padding + random crop) + flip."""
        if self.simple_crop:
            return data.simple_resized_crop(imgs, g, self.crop_padding)
        return super().augment(imgs, g)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.ops.lowfreq_target(x.float(), self.radius, mean=IMAGENET_MEAN, std=IMAGENET_STD)


class SimMIM(Method):
    """Xie et al. 2022: replace 60% of (2·patch)² cells by a mask token, regress their raw pixels (L1)."""

    name = "simmim"
    needs = ("simmim_mask", "patchify", "unpatchify", "masked_l1_loss")
    crop_scale = (0.67, 1.0)
    mask_ratio = 0.6
    # tuned here, not the paper's: the probe rose with the lr up to 1.2e-2 (train_probe.md, "Defaults tuned")
    base_lr = 1.2e-2

    def __init__(self, ops: Ops, img_size: int, patch_size: int, model: ModelConfig):
        super().__init__(ops, img_size, patch_size, model)
        # 32 px mask cells over 16 px ViT patches at 224: two patches a side, when they tile the image
        self.mask_patch_size = 2 * patch_size if img_size % (2 * patch_size) == 0 else patch_size
        self.encoder = Encoder(self.grid, self.patch_dim, model.dim, model.depth, model.heads, mask_token=True)
        self.head = LinearHead(model.dim, self.patch_dim)

    def settings(self) -> dict:
        return {"mask_ratio": self.mask_ratio, "mask_patch_size": self.mask_patch_size}

    def corrupt(self, x: torch.Tensor, seed: int, sample_offset: int) -> torch.Tensor:
        return self.ops.simmim_mask(x.shape[0], self.img_size, self.mask_patch_size, self.patch_size, self.mask_ratio,
                                    seed=seed, sample_offset=sample_offset, device=x.device)   # (B, h, w) bool

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, imgs: torch.Tensor, seed: int, sample_offset: int = 0) -> Step:
        x = normalize(imgs)
        mask = self.corrupt(x, seed, sample_offset)
        tokens = self.encoder(self.ops.patchify(x, self.patch_size), mask=mask.flatten(1))  # mask token in
        x_rec = self.ops.unpatchify(self.head(tokens), self.patch_size, 3, grid_size=self.grid)
        target = self.target(x)
        loss = self.ops.masked_l1_loss(x_rec, target, mask)
        return Step(loss, {"mask": mask.flatten(1), "target": target, "pred": x_rec})

    trivial = "each image's mean colour of its visible pixels"

    @torch.no_grad()
    def trivial_loss(self, step: Step) -> torch.Tensor:
        target, masked = step.tensors["target"].float(), pixel_mask(step.tensors["mask"], self.grid, self.patch_size)
        visible = 1 - masked
        colour = (target * visible).sum((2, 3), keepdim=True) / visible.sum((2, 3), keepdim=True).clamp_min(1)
        mask = step.tensors["mask"].view(-1, *self.grid)
        return mimkernels.masked_l1_loss(colour.expand_as(target), target, mask, backend="torch")

    @torch.no_grad()
    def graded_rows(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        graded = step.tensors["mask"].bool()
        rows = [mimkernels.patchify(step.tensors[k].float(), self.patch_size, backend="torch") for k in ("pred", "target")]
        return rows[0][graded], rows[1][graded]


class MaskFeat(Method):
    """Wei et al. 2022: mask 40% of the patches (mask token in), regress the HOG of the masked ones."""

    name = "maskfeat"
    needs = ("random_mask_indices", "block_mask", "patchify", "hog", "masked_mse_loss")
    crop_scale = (0.5, 1.0)
    mask_ratio = 0.4
    nbins = 9
    # Four settings depart from the paper at 32 px; with the paper's (mask "block", cell 2 = 8/224·32 px,
    # hog_norm True, standardize_target False) the loss stayed 2-3% below the mean HOG's, the HOG of
    # 2 px cells of four pixels being near noise (train_probe.md, "MaskFeat at 32 px").
    mask = "random"          # MAE's random patch mask; "block": BEiT's block-wise mask, the paper's
    hog_cell = 8             # cell side in px (the paper's 8 px): cells of 2x2 patches here, 2x2 cells per patch at 224
    hog_norm = False         # the per-cell L2 normalization (the paper's True)
    standardize_target = True  # each HOG dimension to mean 0, std 1 over the batch's patches (not in the paper)

    def __init__(self, ops: Ops, img_size: int, patch_size: int, model: ModelConfig):
        super().__init__(ops, img_size, patch_size, model)
        if self.mask not in ("random", "block"):
            raise ValueError(f"MaskFeat.mask must be 'random' or 'block', got {self.mask!r}")
        # block mask at 224 px, patch 16: 78 of 196 patches, blocks of >= 15
        self.num_masking_patches = round(self.mask_ratio * self.num_patches)
        self.min_num_patches = max(1, self.num_masking_patches // 5)
        # cells inside a patch (patch a multiple of the cell: the paper's layout, with mmpretrain's Gaussian
        # window of one patch), or one cell over r x r patches, each patch taking its cell's HOG (no window)
        tiles = self.hog_cell % patch_size == 0 and img_size % self.hog_cell == 0
        self.cell = self.hog_cell if patch_size % self.hog_cell == 0 or tiles else patch_size
        self.cells_per_patch = max(1, patch_size // self.cell)
        self.hog_dim = 3 * self.nbins * self.cells_per_patch ** 2
        self.encoder = Encoder(self.grid, self.patch_dim, model.dim, model.depth, model.heads, mask_token=True)
        # mmselfsup's MaskFeat head (truncated normal, std 0.02): with MAE's xavier init it collapsed to
        # the mean HOG (train_probe.md, "Defaults tuned")
        self.head = LinearHead(model.dim, self.hog_dim, init_std=0.02)

    def settings(self) -> dict:
        dropped = self.num_patches - int(self.num_patches * (1 - self.mask_ratio))     # MAE's count
        mask = (f"random, {dropped} of {self.num_patches}" if self.mask == "random" else
                f"block, {self.num_masking_patches} of {self.num_patches}, blocks of >= {self.min_num_patches}")
        return {"mask": mask, "hog_cell": self.cell, "hog_cells_per_patch": self.cells_per_patch,
                "hog_norm": self.hog_norm, "standardize_target": self.standardize_target, "hog_dim": self.hog_dim}

    def corrupt(self, x: torch.Tensor, seed: int, sample_offset: int) -> torch.Tensor:
        """(B, L) bool, True = masked."""
        if self.mask == "random":
            return self.ops.random_mask_indices(x.shape[0], self.num_patches, self.mask_ratio, seed=seed,
                                                sample_offset=sample_offset, device=x.device)[2].bool()
        return self.ops.block_mask(x.shape[0], self.grid[0], self.grid[1], self.num_masking_patches,
                                   self.min_num_patches, seed=seed, sample_offset=sample_offset,
                                   device=x.device).flatten(1)

    def hog(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, hog_dim) HOG of each patch: its cells', or the cell it lies in."""
        if self.cells_per_patch > 1 or self.cell == self.patch_size:
            return self.ops.hog(x.float(), nbins=self.nbins, pool=self.cell, gaussian_window=self.patch_size,
                                norm_out=self.hog_norm, patch_size=self.patch_size)
        cells = self.ops.hog(x.float(), nbins=self.nbins, pool=self.cell, gaussian_window=0,
                             norm_out=self.hog_norm, patch_size=self.cell)          # (B, cells, hog_dim)
        b, g, r = x.shape[0], self.img_size // self.cell, self.cell // self.patch_size
        return cells.view(b, g, 1, g, 1, -1).expand(b, g, r, g, r, -1).reshape(b, self.num_patches, -1)

    def target(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(target, mean, std): target = (HOG - mean) / std, mean and std (1, 1, hog_dim) over the batch's
        patches (0 and 1 without standardize_target). Raw HOG magnitudes span orders of magnitude per bin."""
        hog = self.hog(x)
        if not self.standardize_target:
            return hog, hog.new_zeros(1, 1, 1), hog.new_ones(1, 1, 1)
        rows = hog.flatten(0, 1)
        mean, std = rows.mean(0).view(1, 1, -1), rows.std(0).clamp_min(1e-6).view(1, 1, -1)
        return (hog - mean) / std, mean, std

    def forward(self, imgs: torch.Tensor, seed: int, sample_offset: int = 0) -> Step:
        x = normalize(imgs)
        mask = self.corrupt(x, seed, sample_offset)                                    # (B, L) bool
        pred = self.head(self.encoder(self.ops.patchify(x, self.patch_size), mask=mask))
        target, mean, std = self.target(x)
        loss = self.ops.masked_mse_loss(pred, target, mask)
        b = x.shape[0]
        return Step(loss, {"mask": mask, "target": target, "pred": pred,
                           "hog_mean": mean.expand(b, 1, -1), "hog_std": std.expand(b, 1, -1)})

    def in_hog_units(self, rows: torch.Tensor, tensors: dict) -> torch.Tensor:
        """Target or prediction rows (B, L, hog_dim) of a step, standardized or not, as HOG (for the pictures)."""
        return rows.float() * tensors["hog_std"] + tensors["hog_mean"]

    trivial = "the batch's mean (standardized) HOG of the masked patches"

    @torch.no_grad()
    def trivial_loss(self, step: Step) -> torch.Tensor:
        return mean_row_loss(step.tensors["target"], step.tensors["mask"])

    @torch.no_grad()
    def graded_rows(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        graded = step.tensors["mask"].bool()
        return step.tensors["pred"][graded], step.tensors["target"][graded]


class MFM(Method):
    """Xie et al. 2023: low- or high-pass filter the image (p = 1/2 each), predict the full image,
    graded in frequency space on the frequencies the filter removed."""

    name = "mfm"
    needs = ("mfm_corrupt", "patchify", "unpatchify", "frequency_loss")
    low_pass_prob = 0.5
    # The official RECOVER_TARGET_TYPE: "masked" (the paper's configs) grades the removed frequencies
    # only, "normal" (its config.py default) all of them. What was tried: train_probe.md, "MFM".
    recover_target_type = "masked"

    def __init__(self, ops: Ops, img_size: int, patch_size: int, model: ModelConfig):
        super().__init__(ops, img_size, patch_size, model)
        self.radius = 16 * img_size / 224                     # 16 at 224 px
        self.encoder = Encoder(self.grid, self.patch_dim, model.dim, model.depth, model.heads)
        self.head = LinearHead(model.dim, self.patch_dim)

    def settings(self) -> dict:
        return {"radius": round(self.radius, 3), "low_pass_prob": self.low_pass_prob,
                "recover_target_type": self.recover_target_type}

    def corrupt(self, imgs: torch.Tensor, seed: int, sample_offset: int):
        """[0, 1] images -> (normalized filtered images, pass mask (B, H, W), is_low_pass (B,))."""
        return self.ops.mfm_corrupt(imgs.float(), self.radius, self.low_pass_prob, seed=seed,
                                    sample_offset=sample_offset, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def target(self, imgs: torch.Tensor) -> torch.Tensor:
        return normalize(imgs)

    def forward(self, imgs: torch.Tensor, seed: int, sample_offset: int = 0) -> Step:
        corrupted, freq_mask, is_low_pass = self.corrupt(imgs, seed, sample_offset)
        tokens = self.encoder(self.ops.patchify(corrupted, self.patch_size))
        pred = self.ops.unpatchify(self.head(tokens), self.patch_size, 3, grid_size=self.grid)
        target = self.target(imgs)
        graded = freq_mask if self.recover_target_type == "masked" else None          # None: every frequency
        loss = self.ops.frequency_loss(pred, target, graded)
        return Step(loss, {"corrupted": corrupted, "freq_mask": freq_mask, "is_low_pass": is_low_pass,
                           "target": target, "pred": pred})

    trivial = "the filtered input itself"

    @torch.no_grad()
    def trivial_loss(self, step: Step) -> torch.Tensor:
        t = step.tensors
        graded = t["freq_mask"] if self.recover_target_type == "masked" else None
        return mimkernels.frequency_loss(t["corrupted"].float(), t["target"].float(), graded, backend="torch")

    @torch.no_grad()
    def graded_rows(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [mimkernels.patchify(step.tensors[k].float(), self.patch_size, backend="torch").flatten(0, 1)
                for k in ("pred", "target")]
        return rows[0], rows[1]


METHODS = {m.name: m for m in (MAE, SimMIM, MaskFeat, MFM, PixMIM)}


def build(name: str, ops: Ops, img_size: int, patch_size: int, model: ModelConfig) -> Method:
    """The method `name`; ValueError for an unknown one, or a patch that does not tile."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    if img_size % patch_size:
        raise ValueError(f"--img-size {img_size} is not divisible by --patch-size {patch_size}")
    return METHODS[name](ops, img_size, patch_size, model)
