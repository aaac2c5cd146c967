"""Pictures of a run: for a few images, the input, what the encoder saw (mask or filter), the
target and the prediction, one row per image; and the loss curve. PNGs through matplotlib (Agg).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import mimkernels  # noqa: E402
from mimkernels.train.methods import Method, denormalize  # noqa: E402


def _patch_mask_image(mask: torch.Tensor, grid: tuple[int, int], patch_size: int) -> torch.Tensor:
    """(B, L) mask, 1 = masked -> (B, 1, H, W) pixel mask."""
    m = mask.float().view(-1, 1, *grid)
    return m.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)


def _unnormalize_patches(pred: torch.Tensor, target: torch.Tensor, method: Method) -> torch.Tensor:
    """MAE's predictions are per-patch-normalized pixels: give them the target's per-patch mean and
    (unbiased) std back, and return the image (B, 3, H, W) in normalized space."""
    rows = mimkernels.patchify(target, method.patch_size, backend="torch").float()
    mean, var = rows.mean(-1, keepdim=True), rows.var(-1, keepdim=True)
    return mimkernels.unpatchify(pred.float() * (var + 1e-6).sqrt() + mean, method.patch_size, 3,
                                 grid_size=method.grid, backend="torch")


def _hog_glyphs(hog: torch.Tensor, method, cell_px: int = 8) -> torch.Tensor:
    """(B, L, C·nbins·u²) HOG -> (B, 1, H', W') picture: in each cell, one line per orientation bin
    along the edge direction, as bright as the bin's value summed over channels."""
    b = hog.shape[0]
    nbins, u = method.nbins, method.patch_size // method.pool
    h, w = method.grid
    cells = hog.float().view(b, h, w, 3, nbins, u, u).sum(3)                         # (B, h, w, k, cy, cx)
    cells = cells.permute(0, 1, 4, 2, 5, 3).reshape(b, h * u, w * u, nbins)          # (B, Hc, Wc, k)
    centre = (torch.arange(cell_px) + 0.5 - cell_px / 2).float()
    yy, xx = centre.view(-1, 1), centre.view(1, -1)
    glyphs = []
    for k in range(nbins):
        theta = (k + 0.5) * math.pi / nbins        # gradient angle of bin k, from the +gy axis towards +gx
        ex, ey = math.cos(theta), -math.sin(theta)  # the edge runs across the gradient
        distance = (xx * ey - yy * ex).abs()
        glyphs.append((1 - distance).clamp(0, 1))
    picture = torch.einsum("bijk,kyx->biyjx", cells, torch.stack(glyphs))
    picture = picture.reshape(b, 1, h * u * cell_px, w * u * cell_px)
    return picture / picture.amax((2, 3), keepdim=True).clamp_min(1e-8)


def _spectrum(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """log(1 + |fftshift(fft2(x))|) summed over channels, times weight (B, H, W): (B, 1, H, W) in [0, 1]."""
    amp = torch.fft.fftshift(torch.fft.fft2(x.float(), norm="ortho"), dim=(-2, -1)).abs().sum(1)
    picture = torch.log1p(amp) * weight
    return (picture / picture.amax((1, 2), keepdim=True).clamp_min(1e-8)).unsqueeze(1)


@torch.no_grad()
def panels(method: Method, imgs: torch.Tensor, tensors: dict) -> dict[str, torch.Tensor]:
    """Column title -> (n, 3 or 1, H, W) pictures in [0, 1] for a batch `imgs` and its Step tensors."""
    name = method.name
    if name == "mfm":
        corrupted = denormalize(tensors["corrupted"].float())
        removed = 1 - tensors["freq_mask"].float()
        kind = ["low-pass" if low else "high-pass" for low in tensors["is_low_pass"].tolist()]
        return {"input": imgs, f"filtered ({kind[0]} in row 1)": corrupted,
                "target spectrum, removed part": _spectrum(tensors["target"], removed),
                "prediction": denormalize(tensors["pred"].float())}
    mask = _patch_mask_image(tensors["mask"], method.grid, method.patch_size)
    masked = imgs * (1 - mask) + 0.5 * mask
    if name == "maskfeat":
        return {"input": imgs, "masked": masked, "HOG target": _hog_glyphs(tensors["target"], method),
                "HOG prediction": _hog_glyphs(tensors["pred"], method)}
    target = denormalize(tensors["target"].float())
    if name in ("mae", "pixmim"):
        pred = denormalize(_unnormalize_patches(tensors["pred"], tensors["target"], method))
    else:  # simmim
        pred = denormalize(tensors["pred"].float())
    title = "low-pass target" if name == "pixmim" else "target"
    return {"input": imgs, "masked": masked, title: target, "prediction (+ visible)": pred * mask + imgs * (1 - mask)}


def save_grid(method: Method, imgs: torch.Tensor, tensors: dict, path: Path, rows: int = 6) -> None:
    """PNG of `rows` images: input | masked or filtered | target | prediction."""
    columns = panels(method, imgs[:rows].float().cpu(), {k: v[:rows].detach().cpu() for k, v in tensors.items()})
    n = min(rows, imgs.shape[0])
    fig, axes = plt.subplots(n, len(columns), figsize=(2.2 * len(columns), 2.2 * n), squeeze=False)
    for j, (title, pictures) in enumerate(columns.items()):
        for i in range(n):
            ax = axes[i][j]
            picture = pictures[i].clamp(0, 1).permute(1, 2, 0).numpy()
            ax.imshow(picture if picture.shape[2] == 3 else picture[..., 0], cmap=None if picture.shape[2] == 3 else "gray",
                      interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
    fig.suptitle(method.name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_loss_curve(losses: list[float], steps_per_epoch: int, path: Path, title: str) -> None:
    """PNG of the per-step training loss and its running mean, epochs marked."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, lw=0.6, alpha=0.4, label="step")
    if losses:
        window = max(1, min(50, len(losses) // 10))
        smooth = torch.tensor(losses).unfold(0, window, 1).mean(1) if len(losses) >= window else torch.tensor(losses)
        ax.plot(range(window - 1, window - 1 + len(smooth)), smooth.tolist(), lw=1.5, label=f"mean of {window}")
    for e in range(steps_per_epoch, len(losses), max(1, steps_per_epoch)):
        ax.axvline(e, color="0.85", lw=0.5)
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_title(title), ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
