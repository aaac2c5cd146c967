"""Images for the trainer: an embedded labelled set drawn procedurally (no download) or an image
folder, held in memory as uint8, and batched augmentations (MAE's random resized crop, PixMIM's
simple resized crop, horizontal flip) done with one `grid_sample` per batch.

The embedded set: six shape classes (disc, square, triangle, ring, cross, star), each drawn at a
random position, size and rotation, filled with a random texture (solid, stripes, checker, dots)
in random colours, over a random background (two-colour gradient, smooth noise, faint stripes).
The class is the shape; texture, colours and background are nuisances. Deterministic from the seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mimkernels.train import seeds

SHAPES = ("disc", "square", "triangle", "ring", "cross", "star")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class ImageSet:
    """images (N, 3, S, S) uint8, labels (N,) int64, classes: the name of each label."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    def floats(self, index=slice(None)) -> torch.Tensor:
        """(n, 3, S, S) float32 in [0, 1]."""
        return self.images[index].float() / 255


# ---- the embedded set ---------------------------------------------------------------------------

def _shape_distance(shape: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance-like field (< 0 inside) of each sample's shape, in units of its radius.
    shape (n, 1, 1) int64; u, v (n, S, S) rotated coordinates around the shape's centre."""
    rho = torch.sqrt(u * u + v * v)
    phi = torch.atan2(v, u)
    triangle = torch.stack([u * math.cos(a) + v * math.sin(a) for a in (math.pi / 2, 7 * math.pi / 6,
                                                                         11 * math.pi / 6)]).amax(0) - 0.5
    arm = 0.32
    cross = torch.minimum(torch.maximum(u.abs() - arm, v.abs() - 1), torch.maximum(v.abs() - arm, u.abs() - 1))
    fields = torch.stack([
        rho - 1,                                     # disc
        torch.maximum(u.abs(), v.abs()) - 0.8,       # square
        triangle,                                    # triangle
        (rho - 0.78).abs() - 0.22,                   # ring
        cross,                                       # cross
        rho - (0.62 + 0.38 * torch.cos(5 * phi)),    # star (five points)
    ])
    return fields.gather(0, shape.expand(1, *u.shape)).squeeze(0)


def _smooth_noise(n: int, size: int, cells: int, g: torch.Generator) -> torch.Tensor:
    """(n, 1, S, S) smooth noise in about [-1, 1]: a cells × cells grid upsampled bicubically."""
    coarse = torch.rand(n, 1, cells, cells, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


def _draw(n: int, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 3, S, S) float in [0, 1] and their shape labels (n,)."""
    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(n, *shape, generator=g)

    labels = torch.randint(len(SHAPES), (n,), generator=g)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size          # pixel centres in (0, 1)
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    radius = uniform(0.2, 0.36, 1, 1)
    cy, cx = (uniform(0.5 - 0.48 + r, 0.5 + 0.48 - r, 1, 1) for r in (radius, radius))
    angle = uniform(0, 2 * math.pi, 1, 1)
    dy, dx = (y - cy) / radius, (x - cx) / radius
    u = dx * torch.cos(angle) + dy * torch.sin(angle)
    v = -dx * torch.sin(angle) + dy * torch.cos(angle)
    dist = _shape_distance(labels.view(n, 1, 1), u, v)
    edge = 0.7 / (size * radius)                                              # ~0.7 px of antialiasing
    inside = torch.sigmoid(-dist / edge).unsqueeze(1)                         # (n, 1, S, S)

    # foreground texture between two colours: solid, stripes, checker, dots
    texture = torch.randint(4, (n, 1, 1, 1), generator=g)
    freq = uniform(2.5, 5.0, 1, 1, 1) * math.pi
    su, sv = u.unsqueeze(1), v.unsqueeze(1)
    patterns = torch.stack([
        torch.ones_like(su),
        (torch.sin(freq * su) > 0).float(),
        ((torch.sin(freq * su) > 0) ^ (torch.sin(freq * sv) > 0)).float(),
        ((torch.sin(freq * su) * torch.sin(freq * sv)) > 0.5).float(),
    ])
    pattern = patterns.gather(0, texture.unsqueeze(0).expand(1, n, 1, size, size)).squeeze(0)
    fg_a, fg_b = uniform(0, 1, 3, 1, 1), uniform(0, 1, 3, 1, 1)
    foreground = fg_a * pattern + fg_b * (1 - pattern)

    # background: a gradient between two colours, smooth noise, faint stripes in a random direction
    bg_a, bg_b = uniform(0, 1, 3, 1, 1), uniform(0, 1, 3, 1, 1)
    direction = uniform(0, 2 * math.pi, 1, 1, 1)
    ramp = (x.unsqueeze(0) - 0.5) * torch.cos(direction) + (y.unsqueeze(0) - 0.5) * torch.sin(direction) + 0.5
    background = bg_a * ramp + bg_b * (1 - ramp)
    background = background + 0.15 * _smooth_noise(n, size, 4, g) * uniform(0, 1, 1, 1, 1)
    background = background + 0.08 * torch.sin(uniform(6, 14, 1, 1, 1) * math.pi * ramp) * (torch.rand(
        n, 1, 1, 1, generator=g) < 0.5)
    # keep the shape visible: push the foreground away from the background's mean colour
    contrast = (foreground.mean((2, 3), keepdim=True) - background.mean((2, 3), keepdim=True)).abs().mean(
        1, keepdim=True)
    foreground = torch.where(contrast < 0.25, 1 - foreground, foreground)
    imgs = inside * foreground + (1 - inside) * background
    return imgs.clamp(0, 1), labels


def embedded(img_size: int, seed: int, n_train: int = 2048, n_test: int = 1024) -> tuple[ImageSet, ImageSet]:
    """The embedded set at img_size × img_size: (train, test), disjoint draws, deterministic in seed."""
    sets = []
    for stream, n in ((seeds.EMBEDDED_TRAIN, n_train), (seeds.EMBEDDED_TEST, n_test)):
        g = seeds.generator(seed, stream)
        chunks = [_draw(min(512, n - start), img_size, g) for start in range(0, n, 512)]
        imgs = torch.cat([c[0] for c in chunks])
        sets.append(ImageSet((imgs * 255).round().to(torch.uint8), torch.cat([c[1] for c in chunks]), SHAPES))
    return sets[0], sets[1]


# ---- an image folder ----------------------------------------------------------------------------

def image_folder(path: str | Path, img_size: int, seed: int, test_fraction: float = 0.2) -> tuple[ImageSet, ImageSet]:
    """PATH/<class>/<image> -> (train, test): each image's short side resized to img_size, centre
    crop, RGB; each class split test_fraction / rest, deterministic in seed."""
    from PIL import Image

    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"--data {path}: not a folder (expected PATH/<class>/<image>)")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = {d.name: sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for d in class_dirs}
    files = {name: fs for name, fs in files.items() if fs}
    if len(files) < 2:
        raise ValueError(f"--data {path}: expected one subfolder per class with images in it ({', '.join(IMAGE_SUFFIXES)}), "
                         f"found {len(files)} class folder(s) with images; the linear probe needs at least 2 classes")
    classes = tuple(files)
    images, labels = [], []
    for label, name in enumerate(classes):
        for f in files[name]:
            try:
                with Image.open(f) as im:
                    im = im.convert("RGB")
                    scale = img_size / min(im.size)
                    im = im.resize((max(img_size, round(im.width * scale)), max(img_size, round(im.height * scale))),
                                   Image.BICUBIC)
                    left, top = (im.width - img_size) // 2, (im.height - img_size) // 2
                    im = im.crop((left, top, left + img_size, top + img_size))
                    images.append(torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
                                  .view(img_size, img_size, 3).permute(2, 0, 1))
            except OSError as err:
                raise ValueError(f"--data {path}: cannot read image {f}: {err}") from err
            labels.append(label)
    images, labels = torch.stack(images), torch.tensor(labels)
    g = torch.Generator().manual_seed(seed)
    test = torch.zeros(len(labels), dtype=torch.bool)
    for label in range(len(classes)):
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=g)]
        test[members[:int(round(len(members) * test_fraction))]] = True
    return (ImageSet(images[~test], labels[~test], classes), ImageSet(images[test], labels[test], classes))


# ---- augmentation -------------------------------------------------------------------------------

def _sample(imgs: torch.Tensor, scale_x, scale_y, shift_x, shift_y, padding_mode: str) -> torch.Tensor:
    """Resample imgs (n, C, S, S) through per-sample affine maps of normalized coordinates [-1, 1]."""
    n = imgs.shape[0]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = scale_x, scale_y, shift_x, shift_y
    grid = F.affine_grid(theta, list(imgs.shape), align_corners=False)
    return F.grid_sample(imgs, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def _flip_signs(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)


def random_resized_crop(imgs: torch.Tensor, g: torch.Generator, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """MAE's RandomResizedCrop(scale=(0.2, 1)) + RandomHorizontalFlip: a crop of a random area fraction
    and log-uniform aspect ratio, resized to the input size (bilinear), flipped with p = 0.5.
    Crops wider or taller than the image are clipped to it (torchvision retries, then centre-crops)."""
    n = imgs.shape[0]
    area = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=g)
    log_ratio = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(n, generator=g)
    w = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1)
    h = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1)
    cx = (1 - w) * (2 * torch.rand(n, generator=g) - 1)
    cy = (1 - h) * (2 * torch.rand(n, generator=g) - 1)
    return _sample(imgs, w * _flip_signs(n, g), h, cx, cy, "border")


def simple_resized_crop(imgs: torch.Tensor, g: torch.Generator, padding: int) -> torch.Tensor:
    """PixMIM's simple resized crop (the image is already resized): RandomCrop with `padding` pixels
    of reflect padding, i.e. an integer shift in [-padding, padding] on each axis, + flip."""
    n, size = imgs.shape[0], imgs.shape[-1]
    shift_x, shift_y = (torch.randint(-padding, padding + 1, (n,), generator=g).float() * 2 / size for _ in range(2))
    return _sample(imgs, _flip_signs(n, g), torch.ones(n), shift_x, shift_y, "reflection")
