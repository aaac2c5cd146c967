"""Triton kernel of the frequency family, the truncated DFT (SPEC.md §7.5), and the launchers of
its three ops: `circular_filter` (+ `circular_filter_backward`), `mfm_corrupt` (+ backward) and
`lowfreq_target`, registered as opaque ops in ops.py.

An ideal filter whose pass mask M' (natural layout) is zero outside a box of Ky × Kx signed
frequencies needs only those frequencies:

    P = F_yᴴ · (M_box ⊙ (F_y · X · F_xᵀ)) · F̄_x / (H·W)

with F_y (Ky × H) and F_x (Kx × W) the DFT rows of the box frequencies. One program filters one
image-channel, in two passes over row tiles of X:
  1. S = Σ_tiles F_y[:, tile] · (X[tile, :] · F_xᵀ)   (Ky × Kx, complex, fp32)
  2. S ⊙= M_box; per row tile V = G_y[tile, :] · S, then per column tile Y = V · G_x[:, tile]
all as tl.dot products of twiddle tiles (computed in float64 on the host, stored fp32 and padded
with zeros to whole tiles, so only the image loads are masked). The output of a pixel is then

    MFM     y = Re P, or x - Re P for samples whose wanted mask is the box mask's complement
            (SPEC.md §7.1: one transform serves low- and high-pass); then clamp, then (y - m_c)/s_c.
            The mask is symmetric, so only columns kx >= 0 are transformed (`filter_plan`, half).
    PixMIM  x = z·s_c + m_c on load, y = |P| (complex modulus, full box: the official mask is
            asymmetric), then (y - m_c)/s_c; exact=False: y = |Re P| on the half box.

The image is read in pass 1 (and again in pass 2 only for complement samples), the output written
once. Operands are loaded in their dtype and upcast to fp32 before tl.dot (tl.dot on bf16 is wrong
under the interpreter, and fp32 accumulation is the contract); fp32 dots use `precision`
("ieee" by default: plain TF32 misses the 2e-6 tolerance of SPEC.md §10).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from mimkernels._triton_lib import triton_launch
from mimkernels.frequency import reference


class MaskGeometry(NamedTuple):
    """The arguments of reference.frequency_mask: a hashable key of one pass mask."""
    height: int
    width: int
    radius: float
    high_pass: bool
    center: str
    outer_radius: float | None


@triton.jit
def _truncated_dft_filter_kernel(
    x_ptr,              # input (B, C, H, W), any strides, fp32/fp16/bf16/fp64
    x_stride_b, x_stride_c, x_stride_h, x_stride_w,
    y_ptr,              # output (B, C, H, W), contiguous
    # twiddles and mask in the compute dtype ACC, zero-padded:
    fy_re_ptr, fy_im_ptr,   # (KY, HP) forward row twiddles exp(-2πi·ky·n/H)
    fx_re_ptr, fx_im_ptr,   # (WP, KX) forward column twiddles exp(-2πi·kx·m/W), transposed
    gy_re_ptr, gy_im_ptr,   # (HP, KY) inverse row twiddles exp(+2πi·ky·n/H)/H
    gx_re_ptr, gx_im_ptr,   # (KX, WP) inverse column twiddles exp(+2πi·kx·m/W)/W
    mask_ptr,           # (KY, KX) box pass mask
    complement_ptr,     # (B,) int8: 1 -> output x - P (read when HAS_COMPLEMENT)
    mean_ptr, std_ptr,  # (C,) (read when DENORM_IN or NORM_OUT)
    C,                  # channels
    clamp_lo, clamp_hi,
    H: tl.constexpr, W: tl.constexpr,           # image size (compile-time: loop bounds; one compile per size)
    HP: tl.constexpr, WP: tl.constexpr,         # image size padded to whole tiles
    KY: tl.constexpr, KX: tl.constexpr,         # box sizes, padded to powers of two >= 16
    BH: tl.constexpr, BW: tl.constexpr,         # row / column tile
    OUTPUT: tl.constexpr,                       # 0: Re P (MFM), 1: |Re P|, 2: |P| complex modulus (PixMIM)
    HAS_COMPLEMENT: tl.constexpr, CLAMP: tl.constexpr, DENORM_IN: tl.constexpr, NORM_OUT: tl.constexpr,
    PRECISION: tl.constexpr,
    ACC: tl.constexpr,                          # compute dtype: fp32, fp64 for fp64 inputs
):
    pid = tl.program_id(0).to(tl.int64)
    b = pid // C
    c = pid % C
    x_base = x_ptr + b * x_stride_b + c * x_stride_c
    y_base = y_ptr + pid * H * W
    if DENORM_IN or NORM_OUT:
        mean = tl.load(mean_ptr + c)
        std = tl.load(std_ptr + c)
    rows_t = tl.arange(0, BH)
    cols_t = tl.arange(0, BW)
    ky = tl.arange(0, KY)
    kx = tl.arange(0, KX)

    # ---- pass 1: S = F_y · X · F_xᵀ over the box frequencies ----
    s_re = tl.zeros((KY, KX), dtype=ACC)
    s_im = tl.zeros((KY, KX), dtype=ACC)
    for h0 in range(0, H, BH):
        rows = h0 + rows_t
        t_re = tl.zeros((BH, KX), dtype=ACC)
        t_im = tl.zeros((BH, KX), dtype=ACC)
        for w0 in range(0, W, BW):
            cols = w0 + cols_t
            inside = (rows[:, None] < H) & (cols[None, :] < W)
            xt = tl.load(x_base + rows[:, None] * x_stride_h + cols[None, :] * x_stride_w, mask=inside,
                         other=0.0).to(ACC)
            if DENORM_IN:  # padded pixels turn into `mean`, but meet zero twiddle rows/columns
                xt = xt * std + mean
            fx_off = cols[:, None] * KX + kx[None, :]
            t_re += tl.dot(xt, tl.load(fx_re_ptr + fx_off), input_precision=PRECISION)
            t_im += tl.dot(xt, tl.load(fx_im_ptr + fx_off), input_precision=PRECISION)
        fy_off = ky[:, None] * HP + rows[None, :]
        fy_re = tl.load(fy_re_ptr + fy_off)
        fy_im = tl.load(fy_im_ptr + fy_off)
        s_re += tl.dot(fy_re, t_re, input_precision=PRECISION) - tl.dot(fy_im, t_im, input_precision=PRECISION)
        s_im += tl.dot(fy_re, t_im, input_precision=PRECISION) + tl.dot(fy_im, t_re, input_precision=PRECISION)
    box_mask = tl.load(mask_ptr + ky[:, None] * KX + kx[None, :])
    s_re = s_re * box_mask
    s_im = s_im * box_mask
    if HAS_COMPLEMENT:
        complement = tl.load(complement_ptr + b) != 0

    # ---- pass 2: P = G_y · S · G_x, tile by tile, then the pointwise tail ----
    for h0 in range(0, H, BH):
        rows = h0 + rows_t
        gy_off = rows[:, None] * KY + ky[None, :]
        gy_re = tl.load(gy_re_ptr + gy_off)
        gy_im = tl.load(gy_im_ptr + gy_off)
        v_re = tl.dot(gy_re, s_re, input_precision=PRECISION) - tl.dot(gy_im, s_im, input_precision=PRECISION)
        v_im = tl.dot(gy_re, s_im, input_precision=PRECISION) + tl.dot(gy_im, s_re, input_precision=PRECISION)
        for w0 in range(0, W, BW):
            cols = w0 + cols_t
            inside = (rows[:, None] < H) & (cols[None, :] < W)
            gx_off = kx[:, None] * WP + cols[None, :]
            gx_re = tl.load(gx_re_ptr + gx_off)
            gx_im = tl.load(gx_im_ptr + gx_off)
            y = tl.dot(v_re, gx_re, input_precision=PRECISION) - tl.dot(v_im, gx_im, input_precision=PRECISION)
            if OUTPUT == 1:
                y = tl.abs(y)
            if OUTPUT == 2:
                y_im = tl.dot(v_re, gx_im, input_precision=PRECISION) + tl.dot(v_im, gx_re,
                                                                              input_precision=PRECISION)
                y = tl.sqrt(y * y + y_im * y_im)
            if HAS_COMPLEMENT:
                if complement:
                    xt = tl.load(x_base + rows[:, None] * x_stride_h + cols[None, :] * x_stride_w, mask=inside,
                                 other=0.0).to(ACC)
                    y = xt - y
            if CLAMP:
                y = tl.minimum(tl.maximum(y, clamp_lo), clamp_hi)
            if NORM_OUT:
                y = (y - mean) / std
            tl.store(y_base + rows[:, None] * W + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=inside)


class FilterPlan(NamedTuple):
    """Host-built constants of one filter geometry on one device, in one compute dtype (cached)."""
    twiddles: tuple[torch.Tensor, ...]   # fy_re, fy_im, fx_re, fx_im, gy_re, gy_im, gx_re, gx_im
    box_mask: torch.Tensor               # (KY, KX)
    ky: int                              # padded box sizes
    kx: int
    block_h: int
    block_w: int


def _box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """Bounding box (row0, rows, col0, cols) of the non-zero entries of an fftshifted (H, W) mask;
    an empty mask gives a 1 × 1 box at DC (whose mask entry is 0)."""
    h, w = mask.shape
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    if rows.numel() == 0:
        return h // 2, 1, w // 2, 1
    return int(rows[0]), int(rows[-1]) - int(rows[0]) + 1, int(cols[0]), int(cols[-1]) - int(cols[0]) + 1


def _twiddles(n: int, padded_n: int, freqs: torch.Tensor, padded_k: int, sign: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(padded_k, padded_n) float64 real and imaginary parts of exp(sign·2πi·k·t/n) for the given
    signed frequencies k (rows) and t in [0, n) (columns); zero padding. The phase (k·t mod n) is an
    exact integer before it becomes an angle."""
    t = torch.arange(n, dtype=torch.int64)
    angle = (2 * math.pi / n) * torch.remainder(freqs[:, None] * t[None, :], n).to(torch.float64)
    re = torch.zeros((padded_k, padded_n), dtype=torch.float64)
    im = torch.zeros((padded_k, padded_n), dtype=torch.float64)
    re[: freqs.numel(), :n] = torch.cos(angle)
    im[: freqs.numel(), :n] = sign * torch.sin(angle)
    return re, im


# Largest padded box per axis the kernel takes: S (KY × KX complex fp32) lives in registers, and
# 128 × 128 already needs 128 KB. Larger boxes (radius above ~64) are no longer "truncated": the
# op runs the torch.fft path for them (`_mfm_filter`, `lowfreq_target`).
MAX_BOX = 128


def _pow2_at_least_16(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


@functools.lru_cache(maxsize=64)
def filter_plan(mask: MaskGeometry, device: torch.device, dtype: torch.dtype, half: bool) -> FilterPlan | None:
    """Twiddles (float64 on the host, then `dtype` on `device`) and box mask of the pass mask
    reference.frequency_mask(*mask), cached per (geometry, device, dtype, half); None when the
    box exceeds MAX_BOX frequencies on an axis.

    half=True (symmetric masks, real output only): the columns are kx in [0, max |kx|] and the
    inverse column twiddles carry the weight of each column's mirror image (2, or 1 for kx = 0 and
    the Nyquist column): Re P = Re Σ_{kx >= 0} c(kx)·M·S·e, since M(-k) = M(k) and S(-k) = conj S(k)
    for real x. This halves the column transforms (31 -> 16 columns at r = 16).
    """
    height, width = mask.height, mask.width
    pass_mask = reference.frequency_mask(*mask)
    row0, rows, col0, cols = _box(pass_mask)
    freqs_y = torch.arange(row0, row0 + rows, dtype=torch.int64) - height // 2
    freqs_x = torch.arange(col0, col0 + cols, dtype=torch.int64) - width // 2
    if half:
        freqs_x = torch.arange(0, min(int(freqs_x.abs().max()), width // 2) + 1, dtype=torch.int64)
    ky, kx = _pow2_at_least_16(freqs_y.numel()), _pow2_at_least_16(freqs_x.numel())
    if max(ky, kx) > MAX_BOX:
        return None
    block_h = 32 if height >= 32 else 16
    block_w = 32 if width >= 32 else 16
    hp, wp = triton.cdiv(height, block_h) * block_h, triton.cdiv(width, block_w) * block_w
    fy_re, fy_im = _twiddles(height, hp, freqs_y, ky, -1)
    fx_re, fx_im = _twiddles(width, wp, freqs_x, kx, -1)
    gy_re, gy_im = _twiddles(height, hp, freqs_y, ky, +1)
    gx_re, gx_im = _twiddles(width, wp, freqs_x, kx, +1)
    column_weight = torch.ones((kx, 1), dtype=torch.float64)
    if half:
        column_weight[: freqs_x.numel()] = 2.0
        column_weight[0] = 1.0
        if width % 2 == 0 and int(freqs_x[-1]) == width // 2:
            column_weight[freqs_x.numel() - 1] = 1.0
    mats = (fy_re, fy_im, fx_re.t(), fx_im.t(), gy_re.t() / height, gy_im.t() / height,
            gx_re * column_weight / width, gx_im * column_weight / width)
    natural = torch.fft.ifftshift(pass_mask).to(torch.float64)
    box_mask = torch.zeros((ky, kx), dtype=torch.float64)
    box_mask[: freqs_y.numel(), : freqs_x.numel()] = natural[freqs_y.remainder(height)[:, None],
                                                             freqs_x.remainder(width)[None, :]]
    return FilterPlan(tuple(m.contiguous().to(device=device, dtype=dtype) for m in mats),
                      box_mask.to(device=device, dtype=dtype), ky, kx, block_h, block_w)


_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}
OUTPUT_REAL, OUTPUT_ABS_REAL, OUTPUT_MODULUS = 0, 1, 2


def truncated_dft_filter(x: torch.Tensor, plan: FilterPlan, *, complement: torch.Tensor | None = None,
                         output: int = OUTPUT_REAL, clamp: tuple[float, float] | None = None,
                         affine: torch.Tensor | None = None, denorm_in: bool = False, norm_out: bool = False,
                         out_dtype: torch.dtype | None = None, precision: str = "ieee") -> torch.Tensor:
    """Filter every image-channel of x (B, C, H, W) with the plan's mask; returns (B, C, H, W)
    contiguous in out_dtype (x.dtype by default), computed in the plan's dtype.

    complement (B,) bool: samples whose output is x - P. affine (2, C) in the plan's dtype: mean and
    std rows, used on load (denorm_in: x·s + m) and/or at the store (norm_out: (y - m)/s).
    """
    b, c, h, w = x.shape
    out = torch.empty((b, c, h, w), dtype=out_dtype or x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    comp = complement.to(torch.int8) if complement is not None else out
    mean, std = (affine[0], affine[1]) if affine is not None else (out, out)
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    triton_launch(_truncated_dft_filter_kernel, traceable=False)[(b * c,)](  # an opaque op's body
        x, *x.stride(), out, *plan.twiddles, plan.box_mask, comp, mean, std,
        c, float(lo), float(hi), H=h, W=w, HP=plan.twiddles[0].shape[1], WP=plan.twiddles[7].shape[1],
        KY=plan.ky, KX=plan.kx, BH=plan.block_h, BW=plan.block_w, OUTPUT=output,
        HAS_COMPLEMENT=complement is not None, CLAMP=clamp is not None, DENORM_IN=denorm_in, NORM_OUT=norm_out,
        PRECISION=precision, ACC=_ACC[plan.box_mask.dtype], num_warps=8 if plan.ky * plan.kx >= 64 * 64 else 4,
    )
    return out


# ---- launchers of the ops (the forwards and backwards ops.py registers) --------------------------

def _affine(mean: list[float] | None, std: list[float] | None, device, dtype) -> torch.Tensor | None:
    """(2, C): the mean and std rows the kernel reads (cached on the device)."""
    if mean is None:
        return None
    return torch.cat(reference.affine_tensors(mean, std, dtype, device)).view(2, -1)


def _mfm_filter(imgs: torch.Tensor, radius: float, high_pass: torch.Tensor, clamp, outer_radius: float | None,
                mean, std, out_dtype: torch.dtype) -> torch.Tensor:
    """MFM's filter through the kernel, which filters with the low-pass mask, or with the high-pass
    annulus when MFM's band (outer_radius) cuts the spectrum (its box is then the smaller)."""
    height, width = imgs.shape[2], imgs.shape[3]
    dtype = reference.compute_dtype(imgs)
    box_is_low = outer_radius is None or outer_radius ** 2 > (height // 2) ** 2 + (width // 2) ** 2
    plan = filter_plan(MaskGeometry(height, width, radius, not box_is_low, "mfm", outer_radius), imgs.device, dtype,
                       True)
    if plan is None:  # box beyond MAX_BOX: the whole spectrum is cheaper through torch.fft
        return reference.circular_filter(imgs, radius, high_pass, clamp, outer_radius, mean, std).to(out_dtype)
    affine = _affine(mean, std, imgs.device, dtype)
    return truncated_dft_filter(imgs, plan, complement=high_pass if box_is_low else ~high_pass, clamp=clamp,
                                affine=affine, norm_out=affine is not None, out_dtype=out_dtype)


def circular_filter(imgs: torch.Tensor, radius: float, high_pass: torch.Tensor, clamp: list[float] | None,
                    outer_radius: float | None, mean: list[float] | None, std: list[float] | None) -> torch.Tensor:
    """`circular_filter` on the kernel: (B, C, H, W) -> (B, C, H, W) contiguous in imgs.dtype."""
    return _mfm_filter(imgs, radius, high_pass, clamp, outer_radius, mean, std, imgs.dtype)


def circular_filter_backward(grad: torch.Tensor, imgs: torch.Tensor, radius: float, high_pass: torch.Tensor,
                             clamp: list[float] | None, outer_radius: float | None, mean: list[float] | None,
                             std: list[float] | None, needs: list[bool]) -> list[torch.Tensor]:
    """[grad_imgs] = [filter(grad / std_c · 1[lo <= y_pre <= hi])] (SPEC.md §7.8: the filter is a
    symmetric real circulant, and x - P transposes to itself too); mean is not read."""
    if not needs[0]:
        return [imgs.new_empty((0,))]
    dtype = reference.compute_dtype(imgs)
    g = grad.to(dtype)
    if std is not None:
        g = g / reference.affine_tensors(std, std, dtype, g.device)[1]  # (only the std half is used)
    if clamp is not None:
        y_pre = _mfm_filter(imgs, radius, high_pass, None, outer_radius, None, None, dtype)
        g = torch.where((y_pre >= clamp[0]) & (y_pre <= clamp[1]), g, 0.0)
    return [_mfm_filter(g, radius, high_pass, None, outer_radius, None, None, imgs.dtype)]


def mfm_corrupt(imgs: torch.Tensor, radius: float, high_pass: torch.Tensor, outer_radius: float | None,
                mean: list[float] | None, std: list[float] | None) -> torch.Tensor:
    """The filter of `mfm_corrupt` (the draw is the front door's): `circular_filter` with MFM's clamp."""
    return circular_filter(imgs, radius, high_pass, list(reference.MFM_CLAMP), outer_radius, mean, std)


def mfm_corrupt_backward(grad: torch.Tensor, imgs: torch.Tensor, radius: float, high_pass: torch.Tensor,
                         outer_radius: float | None, mean: list[float] | None, std: list[float] | None,
                         needs: list[bool]) -> list[torch.Tensor]:
    """The backward of `mfm_corrupt`: `circular_filter_backward` with MFM's clamp."""
    return circular_filter_backward(grad, imgs, radius, high_pass, list(reference.MFM_CLAMP), outer_radius, mean,
                                    std, needs)


def lowfreq_target(imgs: torch.Tensor, radius: float, mean: list[float] | None, std: list[float] | None,
                   exact: bool) -> torch.Tensor:
    """`lowfreq_target` on the kernel: PixMIM's asymmetric disc on the full box with the complex
    modulus (exact), or MFM's disc on the half box with |Re P|; affine steps fused."""
    dtype = reference.compute_dtype(imgs)
    geometry = MaskGeometry(imgs.shape[2], imgs.shape[3], radius, False, "pixmim" if exact else "mfm", None)
    plan = filter_plan(geometry, imgs.device, dtype, not exact)
    if plan is None:  # box beyond MAX_BOX: the whole spectrum is cheaper through torch.fft
        return reference.lowfreq_target(imgs, radius, mean, std, exact)
    affine = _affine(mean, std, imgs.device, dtype)
    return truncated_dft_filter(imgs, plan, output=OUTPUT_MODULUS if exact else OUTPUT_ABS_REAL, affine=affine,
                                denorm_in=affine is not None, norm_out=affine is not None)
