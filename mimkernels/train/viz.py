"""Pictures of a run, drawn to be read without the README: for a few test images, one row each, what
the encoder saw, the target in the loss's own space, the prediction beside it, and the prediction
put back into the image; a title with the method, epochs, probe and loss against the trivial
predictor; a legend for the masked area, painted in a colour that none of the pictured images uses.
And the loss curve beside the trivial predictor's. PNGs through matplotlib (Agg).

`panels` returns the columns as tensors (tested: the mask colour covers exactly the masked cells,
MAE's paste-back equals the input on visible patches); `save_grid` lays them out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

import mimkernels  # noqa: E402
from mimkernels.train.methods import Method, denormalize, pixel_mask  # noqa: E402

# Candidate colours of the masked area; the one farthest from every pixel of the pictured images is used.
MASK_COLOURS = {"magenta": (1.0, 0.0, 1.0), "cyan": (0.0, 1.0, 1.0), "lime": (0.0, 1.0, 0.0),
                "red": (1.0, 0.0, 0.0), "blue": (0.0, 0.0, 1.0), "yellow": (1.0, 1.0, 0.0), "orange": (1.0, 0.5, 0.0)}


@dataclass
class Figure:
    """The columns of a picture grid: title -> (n, 3, H, W) in [0, 1]; row labels; the mask colour (RGB)
    and its name, and a note under the title."""

    columns: dict[str, torch.Tensor]
    mask_colour: tuple[float, float, float]
    mask_colour_name: str
    row_labels: list[str] = field(default_factory=list)
    note: str = ""


def pick_mask_colour(imgs: torch.Tensor) -> tuple[str, tuple[float, float, float]]:
    """(name, RGB) of the candidate colour whose nearest pixel among `imgs` (n, 3, H, W) in [0, 1] is farthest."""
    pixels = imgs.permute(0, 2, 3, 1).reshape(-1, 3).float()
    best = max(MASK_COLOURS.items(), key=lambda kv: (pixels - torch.tensor(kv[1])).abs().amax(1).min().item())
    return best


def paint(imgs: torch.Tensor, where: torch.Tensor, colour: tuple[float, float, float]) -> torch.Tensor:
    """imgs (n, 3, H, W) with the pixels where `where` (n, 1, H, W) is 1 set to `colour`."""
    fill = imgs.new_tensor(colour).view(1, 3, 1, 1)
    return torch.where(where.bool(), fill, imgs)


def show_normalized(rows: torch.Tensor, method: Method) -> torch.Tensor:
    """Per-patch-normalized rows (B, L, p·p·3) -> (B, 3, H, W) in [0, 1]: 0 -> mid grey, ±2 std -> 0 and 1."""
    x = mimkernels.unpatchify(rows.float(), method.patch_size, 3, grid_size=method.grid, backend="torch")
    return (0.5 + x / 4).clamp(0, 1)


def reconstruction(pred: torch.Tensor, target: torch.Tensor, method: Method) -> torch.Tensor:
    """MAE's normalized prediction given the target patch's mean and (unbiased) std back: (B, 3, H, W),
    in the normalized image space of `target`."""
    rows = mimkernels.patchify(target.float(), method.patch_size, backend="torch")
    mean, var = rows.mean(-1, keepdim=True), rows.var(-1, keepdim=True)
    return mimkernels.unpatchify(pred.float() * (var + 1e-6).sqrt() + mean, method.patch_size, 3,
                                 grid_size=method.grid, backend="torch")


def hog_glyphs(hog: torch.Tensor, method: Method, cell_px: int = 8) -> torch.Tensor:
    """(B, L, C·nbins·u²) HOG -> (B, 1, H', W') >= 0: in each HOG cell, one line per orientation bin
    along the edge direction, as bright as the bin's value summed over channels."""
    b = hog.shape[0]
    nbins, u = method.nbins, method.cells_per_patch
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
    return picture.reshape(b, 1, h * u * cell_px, w * u * cell_px)


def on_masked_cells(glyphs: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, method: Method) -> torch.Tensor:
    """HOG glyphs (B, 1, H', W') drawn white on black on the masked patches; the visible patches show the
    image, dimmed to a third, for context. (B, 3, H', W')."""
    zoom = glyphs.shape[-1] // imgs.shape[-1]
    where = pixel_mask(mask, method.grid, method.patch_size * zoom)
    context = imgs.repeat_interleave(zoom, 2).repeat_interleave(zoom, 3) / 3
    return torch.where(where.bool(), glyphs.expand(-1, 3, -1, -1), context)


def centred_spectrum(x: torch.Tensor) -> torch.Tensor:
    """fftshift(fft2(x, ortho)) over the last two dims: the layout of MFM's masks and loss."""
    return torch.fft.fftshift(torch.fft.fft2(x.float(), norm="ortho"), dim=(-2, -1))


def log_amplitude(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """log(1 + |centred spectrum|) summed over channels, times weight (B, H, W): (B, H, W)."""
    return torch.log1p(centred_spectrum(x).abs().sum(1)) * weight


def spectrum(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """log_amplitude over `scale` (B,) (default: its own maximum): (B, 3, H, W) grey in [0, 1]."""
    picture = log_amplitude(x, weight)
    scale = picture.amax((1, 2)) if scale is None else scale
    return (picture / scale.view(-1, 1, 1).clamp_min(1e-8)).clamp(0, 1).unsqueeze(1).expand(-1, 3, -1, -1)


@torch.no_grad()
def panels(method: Method, imgs: torch.Tensor, tensors: dict) -> Figure:
    """The figure's columns for a batch `imgs` (n, 3, H, W) in [0, 1] and its Step tensors."""
    imgs = imgs.float()
    name_colour, colour = pick_mask_colour(imgs)
    if method.name == "mfm":
        return _mfm_panels(imgs, tensors, name_colour, colour)
    mask = tensors["mask"].float()
    masked_px = pixel_mask(mask, method.grid, method.patch_size)
    encoder_sees = paint(imgs, masked_px, colour)
    if method.name == "maskfeat":
        target, pred = (hog_glyphs(method.in_hog_units(tensors[k], tensors), method) for k in ("target", "pred"))
        scale = target.amax((1, 2, 3), keepdim=True).clamp_min(1e-8)   # one per image, the target's: strengths compare
        target = on_masked_cells((target / scale).clamp(0, 1), imgs, mask, method)
        pred = on_masked_cells((pred / scale).clamp(0, 1), imgs, mask, method)
        return Figure({"input": imgs, "encoder sees": encoder_sees, "HOG target (masked cells)": target,
                       "HOG prediction (masked cells)": pred}, colour, name_colour,
                      note="glyphs: one line per orientation bin along the edge, as bright as the bin; "
                           "target and prediction on the same scale; visible cells show the image, dimmed")
    if method.name == "simmim":
        pred = denormalize(tensors["pred"].float()).clamp(0, 1)
        return Figure({"input = target": imgs, "encoder sees": encoder_sees, "prediction (every pixel)": pred,
                       "prediction pasted into the visible": pred * masked_px + imgs * (1 - masked_px)},
                      colour, name_colour, note="the loss: L1 to the input's pixels, on the masked cells only")
    # MAE, PixMIM: the loss compares per-patch-normalized rows on the masked patches
    normalized = mimkernels.patch_norm_target(tensors["target"].float(), method.patch_size, backend="torch")
    pasted = denormalize(reconstruction(tensors["pred"], tensors["target"], method)).clamp(0, 1)
    pasted = pasted * masked_px + imgs * (1 - masked_px)
    target_title = "low-pass target, per-patch norm." if method.name == "pixmim" else "target, per-patch normalized"
    return Figure({"input": imgs, "encoder sees": encoder_sees, target_title: show_normalized(normalized, method),
                   "prediction, same space": show_normalized(tensors["pred"], method),
                   "reconstruction pasted into the visible": pasted}, colour, name_colour,
                  note="the loss: MSE between the two normalized columns on the masked patches (grey = the "
                       "patch's mean, black/white = -/+2 std); the last column gives each predicted patch the "
                       "target patch's mean and std")


def put_back_removed_band(pred: torch.Tensor, corrupted: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """MFM's paste-back, in frequency: the prediction's frequencies where the filter removed them, the
    filtered input's elsewhere. pred, corrupted (B, C, H, W); removed (B, H, W), 1 = removed, in the
    centred (fftshift) layout of the loss. -> (B, C, H, W) real."""
    w = removed.float().unsqueeze(1)
    mixed = centred_spectrum(pred) * w + centred_spectrum(corrupted) * (1 - w)
    return torch.fft.ifft2(torch.fft.ifftshift(mixed, dim=(-2, -1)), norm="ortho").real


def _mfm_panels(imgs: torch.Tensor, tensors: dict, name_colour: str, colour) -> Figure:
    """MFM: input, filtered input, prediction, original in pixels; the removed part of the spectrum of the
    target and of the prediction, on one scale per row."""
    removed = 1 - tensors["freq_mask"].float()
    if removed.dim() == 2:
        removed = removed.expand(imgs.shape[0], -1, -1)
    scale = log_amplitude(tensors["target"], removed).amax((1, 2))      # the target's: the two spectra compare
    low_pass = tensors["is_low_pass"].bool()
    rows = ["low-pass" if low else "high-pass" for low in low_pass.tolist()]
    # a high-pass image has no mean (it is ~0 around its edges): shown on mid grey
    filtered = denormalize(tensors["corrupted"].float()) + 0.5 * (~low_pass).float().view(-1, 1, 1, 1)
    put_back = denormalize(put_back_removed_band(tensors["pred"], tensors["corrupted"], removed)).clamp(0, 1)
    return Figure({"input": imgs, "filtered (encoder sees)": filtered.clamp(0, 1),
                   "prediction": denormalize(tensors["pred"].float()).clamp(0, 1),
                   "removed band predicted + filtered": put_back, "original = target": imgs,
                   "target spectrum, removed part": spectrum(tensors["target"], removed, scale),
                   "prediction spectrum, removed part": spectrum(tensors["pred"], removed, scale)},
                  colour, name_colour, row_labels=rows,
                  note="the loss grades the prediction's frequencies that the filter removed (the spectra, "
                       "log amplitude, centre = low frequencies); the 4th column puts those predicted frequencies "
                       "back into the filtered input; high-pass inputs are shown on mid grey")


def save_grid(method: Method, imgs: torch.Tensor, tensors: dict, path: Path, title: str = "", rows: int = 6) -> Figure:
    """PNG of `rows` images, one per row, the columns of `panels`; returns the Figure drawn."""
    n = min(rows, imgs.shape[0])
    figure = panels(method, imgs[:n].float().cpu(), {k: v[:n].detach().cpu() for k, v in tensors.items()})
    columns = figure.columns
    fig, axes = plt.subplots(n, len(columns), figsize=(2.2 * len(columns), 2.2 * n + 1.0), squeeze=False)
    for j, (heading, pictures) in enumerate(columns.items()):
        for i in range(n):
            ax = axes[i][j]
            ax.imshow(pictures[i].clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(heading, fontsize=8)
            if j == 0 and figure.row_labels:
                ax.set_ylabel(figure.row_labels[i], fontsize=9)
    fig.suptitle(title or method.name, fontsize=10)
    if method.name != "mfm":
        fig.legend(handles=[Patch(facecolor=figure.mask_colour, edgecolor="black",
                                  label=f"masked: hidden from the encoder ({figure.mask_colour_name})")],
                   loc="lower center", fontsize=8, frameon=False)
    if figure.note:
        fig.text(0.5, 0.035 if method.name != "mfm" else 0.01, figure.note, ha="center", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return figure


def save_loss_curve(losses: list[float], steps_per_epoch: int, path: Path, title: str,
                    trivial_losses: list[float] | None = None, trivial: str = "") -> None:
    """PNG of the per-step training loss and its running mean, epochs marked, and the trivial predictor's
    loss on the same batches."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(losses, lw=0.6, alpha=0.4, label="step")
    window = max(1, min(50, len(losses) // 10))
    for values, label, style in ((losses, f"mean of {window} steps", "-"),
                                 (trivial_losses or [], f"trivial predictor: {trivial}", "--")):
        if len(values) >= window:
            smooth = torch.tensor(values).unfold(0, window, 1).mean(1)
            ax.plot(range(window - 1, window - 1 + len(smooth)), smooth.tolist(), style, lw=1.5, label=label)
    for e in range(steps_per_epoch, len(losses), max(1, steps_per_epoch)):
        ax.axvline(e, color="0.85", lw=0.5)
    ax.set_xlabel("step"), ax.set_ylabel("masked loss"), ax.set_title(title), ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
