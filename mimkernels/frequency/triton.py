"""Triton kernels of the frequency family, the truncated DFT (SPEC.md §7.5), and the launchers of
its three ops: `circular_filter` (+ `circular_filter_backward`), `mfm_corrupt` (+ backward) and
`lowfreq_target`, registered as opaque ops in ops.py.

An ideal filter whose pass mask M' (natural layout) is zero outside a box of Ky × Kx signed
frequencies needs only those frequencies:

    P = F_yᴴ · (M_box ⊙ (F_y · X · F_xᵀ)) · F̄_x / (H·W)

with F_y (Ky × H) and F_x (Kx × W) the DFT rows of the box frequencies. Two kernels:
  1. `_dft_spectrum_kernel`, one program per (image-channel, 16 box columns):
     S[:, cols] = M_box ⊙ Σ_row tiles F_y[:, tile] · (X[tile, :] · F_x[cols]ᵀ), written to a
     (B·C, 2, KYS, KXP) fp32 workspace (39 MB at B = 256 for PixMIM's 80 × 80 box, 6 MB for MFM's);
  2. `_dft_synthesis_kernel`, one program per (image-channel, 32 output rows): per column tile (the
     whole row up to 256 px) Y = Σ_column chunks (Σ_row chunks G_y[rows, chunk] · S[chunk, chunk']) ·
     G_x[chunk', cols], then the pointwise tail,
all as tl.dot products of twiddle tiles (computed in float64 on the host, stored fp32 and padded
with zeros to whole tiles, so only the image loads are masked). The output of a pixel is then

    MFM     y = Re P, or x - Re P for samples whose wanted mask is the box mask's complement
            (SPEC.md §7.1: one transform serves low- and high-pass); then clamp, then (y - m_c)/s_c.
            The mask is symmetric, so only columns kx >= 0 are transformed (`filter_plan`, half).
    PixMIM  x = z·s_c + m_c, folded into the spectrum (S = s_c·DFT(z) + m_c·H·W at frequency 0, so z
            goes in as loaded), y = |P| (complex modulus, full box: the official mask is
            asymmetric), then (y - m_c)/s_c; exact=False: y = |Re P| on the half box.

The image is read by the spectrum kernel (once per 16 box columns: the re-reads of one image-channel
come from adjacent programs, L2) and again by the synthesis only for complement samples; the output is
written once. Operands are loaded in their dtype and upcast to fp32 before tl.dot (tl.dot on bf16 is
wrong under the interpreter, and fp32 accumulation is the contract). fp32 products are 3xTF32 on
tensor cores (`_mma`): every operand split into TF32 hi + lo (the twiddles on the host, the data in
the kernel by `_split_tf32`), three TF32 products; plain TF32 misses SPEC.md §10's 2e-6, FMA-unit
fp32 is kept as `precision="ieee"`. SPEC.md §8.1 has the model's numbers.
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
def _split_tf32(a):
    """a = hi + lo with hi and lo representable in TF32 (10-bit mantissa; hi rounded to nearest, ties
    away, as cvt.rna.tf32.f32 does): the operands of a 3xTF32 product. Under TRITON_INTERPRET=1 a
    tl.dot ignores input_precision and is exact in fp32, and the dot of TF32-exact operands is what a
    tensor core computes (up to the summation order), so the tests see the GPU's precision."""
    hi = ((a.to(tl.uint32, bitcast=True) + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)
    r = a - hi  # exact
    lo = ((r.to(tl.uint32, bitcast=True) + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)
    return hi, lo


@triton.jit
def _split(a, SPLIT: tl.constexpr):
    """(hi, lo) of an fp32 tile for a 3xTF32 product (SPLIT), else (a, a) (lo unused)."""
    if SPLIT:
        hi, lo = _split_tf32(a)
    else:
        hi = a
        lo = a
    return hi, lo


@triton.jit
def _load_split(ptr, offsets, PLANE: tl.constexpr, SPLIT: tl.constexpr):
    """(hi, lo) of a host-split twiddle tile: planes 1 and 2 of a (3, ...) twiddle tensor (SPLIT), else
    (plane 0, the exact values, twice)."""
    if SPLIT:
        hi = tl.load(ptr + PLANE + offsets)
        lo = tl.load(ptr + 2 * PLANE + offsets)
    else:
        hi = tl.load(ptr + offsets)
        lo = hi
    return hi, lo


@triton.jit
def _mma(a_hi, a_lo, b_hi, b_lo, acc, SPLIT: tl.constexpr, PRECISION: tl.constexpr):
    """acc + a·b. SPLIT (fp32): 3xTF32, lo·hi + hi·lo + hi·hi, three tensor-core products of TF32-exact
    operands (the lo·lo term, ~2^-22 relative, is dropped); else one tl.dot of the hi operands in
    PRECISION ("ieee": FMA units; fp64 is always ieee)."""
    if SPLIT:
        acc = tl.dot(a_lo, b_hi, acc, input_precision="tf32")
        acc = tl.dot(a_hi, b_lo, acc, input_precision="tf32")
        acc = tl.dot(a_hi, b_hi, acc, input_precision="tf32")
    else:
        acc = tl.dot(a_hi, b_hi, acc, input_precision=PRECISION, out_dtype=acc.dtype)  # fp64 stays fp64
    return acc


@triton.jit
def _dft_spectrum_kernel(
    x_ptr,              # input (B, C, H, W), any strides, fp32/fp16/bf16/fp64
    x_stride_b, x_stride_c, x_stride_h, x_stride_w,
    s_ptr,              # workspace (B·C, 2, KYS, KXP) in ACC: the masked box spectrum, real and imaginary planes
    # twiddles and mask in the compute dtype ACC, zero-padded:
    # twiddles: (3, rows, columns) each: the values, then their TF32 hi and lo parts (`_load_split`)
    fy_re_ptr, fy_im_ptr,   # (KY, HP) forward row twiddles exp(-2πi·ky·n/H)
    fx_re_ptr, fx_im_ptr,   # (WP, KXP) forward column twiddles exp(-2πi·kx·m/W), transposed
    mask_ptr,           # (KY, KXP) box pass mask
    mean_ptr, std_ptr,  # (C,) (read when DENORM_IN)
    C,                  # channels
    DC_ROW, DC_COL,     # box row and column of frequency (0, 0); -1 when outside the box (DENORM_IN)
    H: tl.constexpr, W: tl.constexpr,           # image size (compile-time: loop bounds; one compile per size)
    HP: tl.constexpr, WP: tl.constexpr,         # image size padded to whole tiles
    KY: tl.constexpr,                           # box rows padded to a power of two >= 16 (one dot's M)
    KYS: tl.constexpr, KXP: tl.constexpr,       # box rows / columns padded to whole chunks of KC
    KC1: tl.constexpr,                          # the box columns of one program (KXP is a whole multiple of it)
    BH: tl.constexpr, BW: tl.constexpr,         # row / column tile of the image
    OUTPUT: tl.constexpr,                       # the op the spectrum serves (as in the synthesis; not read)
    DENORM_IN: tl.constexpr, SPLIT: tl.constexpr, PRECISION: tl.constexpr,
    X_TF32: tl.constexpr,                       # SPLIT and the loaded pixels are TF32-exact (fp16/bf16)
    ACC: tl.constexpr,                          # compute dtype: fp32, fp64 for fp64 inputs
):
    """Pass 1 of the truncated DFT, one program per (image-channel, chunk of KC box columns):
    S[:, chunk] = M_box ⊙ (F_y · X · F_x[chunk]ᵀ), accumulated over the image's row tiles."""
    nkx: tl.constexpr = KXP // KC1
    pid = tl.program_id(0)
    ic = (pid // nkx).to(tl.int64)  # image-channel: 64-bit, the base offsets can pass 2^31
    j = pid % nkx
    b = ic // C
    c = ic % C
    # within one image int32 is enough: a (H, W) plane's offsets are below H·W·C strides of one image
    x_base = x_ptr + b * x_stride_b + c * x_stride_c
    if DENORM_IN:
        mean = tl.load(mean_ptr + c)
        std = tl.load(std_ptr + c)
    rows_t = tl.arange(0, BH)
    cols_t = tl.arange(0, BW)
    ky = tl.arange(0, KY)
    kx = j * KC1 + tl.arange(0, KC1)

    s_re = tl.zeros((KY, KC1), dtype=ACC)
    s_im = tl.zeros((KY, KC1), dtype=ACC)
    for h0 in range(0, H, BH):
        rows = h0 + rows_t
        t_re = tl.zeros((BH, KC1), dtype=ACC)
        t_im = tl.zeros((BH, KC1), dtype=ACC)
        for w0 in range(0, W, BW):
            cols = w0 + cols_t
            inside = (rows[:, None] < H) & (cols[None, :] < W)
            xt = tl.load(x_base + rows[:, None] * x_stride_h + cols[None, :] * x_stride_w, mask=inside,
                         other=0.0).to(ACC)
            x_hi, x_lo = _split(xt, SPLIT and not X_TF32)
            fx_off = cols[:, None] * KXP + kx[None, :]
            fr_hi, fr_lo = _load_split(fx_re_ptr, fx_off, WP * KXP, SPLIT)
            fi_hi, fi_lo = _load_split(fx_im_ptr, fx_off, WP * KXP, SPLIT)
            if X_TF32:  # fp16/bf16 pixels are TF32-exact: x·(hi + lo) in two products
                t_re = tl.dot(x_hi, fr_lo, t_re, input_precision="tf32")
                t_re = tl.dot(x_hi, fr_hi, t_re, input_precision="tf32")
                t_im = tl.dot(x_hi, fi_lo, t_im, input_precision="tf32")
                t_im = tl.dot(x_hi, fi_hi, t_im, input_precision="tf32")
            else:
                t_re = _mma(x_hi, x_lo, fr_hi, fr_lo, t_re, SPLIT, PRECISION)
                t_im = _mma(x_hi, x_lo, fi_hi, fi_lo, t_im, SPLIT, PRECISION)
        fy_off = ky[:, None] * HP + rows[None, :]
        yr_hi, yr_lo = _load_split(fy_re_ptr, fy_off, KY * HP, SPLIT)
        yi_hi, yi_lo = _load_split(fy_im_ptr, fy_off, KY * HP, SPLIT)
        tr_hi, tr_lo = _split(t_re, SPLIT)
        ti_hi, ti_lo = _split(t_im, SPLIT)
        s_re = _mma(yr_hi, yr_lo, tr_hi, tr_lo, s_re, SPLIT, PRECISION)
        s_re = _mma(yi_hi, yi_lo, -ti_hi, -ti_lo, s_re, SPLIT, PRECISION)
        s_im = _mma(yr_hi, yr_lo, ti_hi, ti_lo, s_im, SPLIT, PRECISION)
        s_im = _mma(yi_hi, yi_lo, tr_hi, tr_lo, s_im, SPLIT, PRECISION)
    if DENORM_IN:  # DFT(z·s + m) = s·DFT(z) + m·H·W at frequency (0, 0): z goes in as loaded (TF32-exact
        # when fp16/bf16), the affine step costs one multiply per box entry
        s_re = s_re * std + tl.where((ky[:, None] == DC_ROW) & (kx[None, :] == DC_COL), mean * (H * W), 0.0)
        s_im = s_im * std
    box_mask = tl.load(mask_ptr + ky[:, None] * KXP + kx[None, :])
    s_off = ic * (2 * KYS * KXP) + ky[:, None] * KXP + kx[None, :]
    kept = (ky < KYS)[:, None] & (kx < KXP)[None, :]  # rows beyond the last chunk are zero: not stored
    tl.store(s_ptr + s_off, s_re * box_mask, mask=kept)
    tl.store(s_ptr + s_off + KYS * KXP, s_im * box_mask, mask=kept)


@triton.jit
def _dft_synthesis_kernel(
    x_ptr,              # input (B, C, H, W), any strides (read for complement samples only)
    x_stride_b, x_stride_c, x_stride_h, x_stride_w,
    y_ptr,              # output (B, C, H, W), contiguous
    s_ptr,              # workspace (B·C, 2, KYS, KXP): the masked box spectrum of the spectrum kernel
    gy_re_ptr, gy_im_ptr,   # (3, HP, KYS) inverse row twiddles exp(+2πi·ky·n/H)/H
    gx_re_ptr, gx_im_ptr,   # (3, KXP, WP) inverse column twiddles exp(+2πi·kx·m/W)/W (× mirror weight)
    complement_ptr,     # (B,) int8: 1 -> output x - P (read when HAS_COMPLEMENT)
    mean_ptr, std_ptr,  # (C,) (read when NORM_OUT)
    C,                  # channels
    clamp_lo, clamp_hi,
    H: tl.constexpr, W: tl.constexpr,
    HP: tl.constexpr, WP: tl.constexpr,         # image size padded to whole tiles
    KYS: tl.constexpr, KXP: tl.constexpr, KC: tl.constexpr,
    KXN: tl.constexpr,                          # box columns read: whole chunks of KC, <= KXP
    BH: tl.constexpr, BW: tl.constexpr,         # output tile: BH rows, BW columns (BW >= W up to 256)
    OUTPUT: tl.constexpr,                       # 0: Re P (MFM), 1: |Re P|, 2: |P| complex modulus (PixMIM)
    HAS_COMPLEMENT: tl.constexpr, CLAMP: tl.constexpr, NORM_OUT: tl.constexpr,
    SPLIT: tl.constexpr, PRECISION: tl.constexpr, ACC: tl.constexpr,
):
    """Pass 2, one program per (image-channel, BH output rows): P = G_y[rows] · S · G_x per column
    tile, as Σ over box column chunks of (Σ over box row chunks G_y · S) · G_x, then the pointwise tail."""
    nh: tl.constexpr = HP // BH
    pid = tl.program_id(0)
    ic = (pid // nh).to(tl.int64)
    i = pid % nh
    b = ic // C
    c = ic % C
    x_base = x_ptr + b * x_stride_b + c * x_stride_c
    y_base = y_ptr + ic * H * W
    s_base = s_ptr + ic * (2 * KYS * KXP)
    if NORM_OUT:
        mean = tl.load(mean_ptr + c)
        std = tl.load(std_ptr + c)
    if HAS_COMPLEMENT:
        complement = tl.load(complement_ptr + b) != 0
    rows = i * BH + tl.arange(0, BH)
    cols_t = tl.arange(0, BW)
    kk = tl.arange(0, KC)
    for w0 in range(0, W, BW):
        cols = w0 + cols_t
        y_re = tl.zeros((BH, BW), dtype=ACC)
        y_im = tl.zeros((BH, BW), dtype=ACC)
        for j0 in range(0, KXN, KC):
            v_re = tl.zeros((BH, KC), dtype=ACC)
            v_im = tl.zeros((BH, KC), dtype=ACC)
            for k0 in tl.static_range(0, KYS, KC):  # unrolled: at most MAX_BOX // KC chunks
                gy_off = rows[:, None] * KYS + (k0 + kk)[None, :]
                gr_hi, gr_lo = _load_split(gy_re_ptr, gy_off, HP * KYS, SPLIT)
                gi_hi, gi_lo = _load_split(gy_im_ptr, gy_off, HP * KYS, SPLIT)
                s_off = (k0 + kk)[:, None] * KXP + (j0 + kk)[None, :]
                sr_hi, sr_lo = _split(tl.load(s_base + s_off), SPLIT)
                si_hi, si_lo = _split(tl.load(s_base + KYS * KXP + s_off), SPLIT)
                v_re = _mma(gr_hi, gr_lo, sr_hi, sr_lo, v_re, SPLIT, PRECISION)
                v_re = _mma(gi_hi, gi_lo, -si_hi, -si_lo, v_re, SPLIT, PRECISION)
                v_im = _mma(gr_hi, gr_lo, si_hi, si_lo, v_im, SPLIT, PRECISION)
                v_im = _mma(gi_hi, gi_lo, sr_hi, sr_lo, v_im, SPLIT, PRECISION)
            gx_off = (j0 + kk)[:, None] * WP + cols[None, :]
            xr_hi, xr_lo = _load_split(gx_re_ptr, gx_off, KXP * WP, SPLIT)
            xi_hi, xi_lo = _load_split(gx_im_ptr, gx_off, KXP * WP, SPLIT)
            vr_hi, vr_lo = _split(v_re, SPLIT)
            vi_hi, vi_lo = _split(v_im, SPLIT)
            y_re = _mma(vr_hi, vr_lo, xr_hi, xr_lo, y_re, SPLIT, PRECISION)
            y_re = _mma(-vi_hi, -vi_lo, xi_hi, xi_lo, y_re, SPLIT, PRECISION)
            if OUTPUT == 2:
                y_im = _mma(vr_hi, vr_lo, xi_hi, xi_lo, y_im, SPLIT, PRECISION)
                y_im = _mma(vi_hi, vi_lo, xr_hi, xr_lo, y_im, SPLIT, PRECISION)
        y = y_re
        if OUTPUT == 1:
            y = tl.abs(y)
        if OUTPUT == 2:
            y = tl.sqrt(y * y + y_im * y_im)
        inside = (rows[:, None] < H) & (cols[None, :] < W)
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
    spectrum_twiddles: tuple[torch.Tensor, ...]    # fy_re, fy_im (KY, HP1), fx_re, fx_im (WP1, KXP)
    synthesis_twiddles: tuple[torch.Tensor, ...]   # gy_re, gy_im (HP2, KYS), gx_re, gx_im (KXP, WP2)
    box_mask: torch.Tensor               # (KY, KXP)
    ky: int                              # box rows padded to a power of two >= 16
    kys: int                             # box rows padded to whole chunks of CHUNK
    kxp: int                             # box columns padded to whole chunks of kc1 (the spectrum's row width)
    kxn: int                             # box columns padded to whole chunks of CHUNK (<= kxp)
    kc1: int                             # box columns of one spectrum program
    dc: tuple[int, int]                  # box (row, column) of frequency (0, 0), -1 where outside
    spectrum_block: tuple[int, int]      # (BH, BW) of the spectrum kernel's image tiles
    synthesis_block: tuple[int, int]     # (BH, BW) of the synthesis kernel's output tiles


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


# Largest box per axis the kernels take (rows padded to a power of two, columns to whole chunks): the
# spectrum kernel holds a KY × CHUNK complex accumulator, and beyond ~128 frequencies per axis (radius
# above ~64) the truncation stops paying: the op runs the torch.fft path (`_mfm_filter`, `lowfreq_target`).
MAX_BOX = 128
CHUNK = 16  # box columns per spectrum program, and the K of the synthesis dots (the smallest tl.dot side)


def _tf32(v: torch.Tensor) -> torch.Tensor:
    """float32 v rounded to TF32 (10-bit mantissa), to nearest with ties away: cvt.rna.tf32.f32."""
    bits = v.contiguous().view(torch.int32)
    return ((bits + 0x1000) & -0x2000).view(torch.float32)


def _with_tf32_parts(m: torch.Tensor) -> torch.Tensor:
    """(3, ...) float64: m, then hi = tf32(fp32(m)) and lo = tf32(fp32(m) - hi), the operand pair of a
    3xTF32 product (the kernels read planes 1-2 when they split, plane 0 otherwise)."""
    v = m.to(torch.float32)
    hi = _tf32(v)
    lo = _tf32(v - hi)
    return torch.stack([m, hi.to(torch.float64), lo.to(torch.float64)])


def _pow2_at_least_16(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _whole(n: int, block: int) -> int:
    return triton.cdiv(n, block) * block


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
    ky, kys, kxn = _pow2_at_least_16(freqs_y.numel()), _whole(freqs_y.numel(), CHUNK), _whole(freqs_x.numel(), CHUNK)
    if max(ky, kxn) > MAX_BOX:
        return None
    # a spectrum program takes 16 box columns: 32 would feed each loaded and split pixel to twice the
    # products (PixMIM r = 40: modelled 294 µs against 334 µs) but spills (255 registers, 80 B)
    kc1 = CHUNK
    kxp = _whole(kxn, kc1)
    bh1, bw1 = (32 if height >= 32 else 16), (32 if width >= 32 else 16)
    bh2, bw2 = (32 if height >= 32 else 16), min(256, _pow2_at_least_16(width))
    hp1, wp1, hp2, wp2 = _whole(height, bh1), _whole(width, bw1), _whole(height, bh2), _whole(width, bw2)
    fy_re, fy_im = _twiddles(height, hp1, freqs_y, ky, -1)
    fx_re, fx_im = _twiddles(width, wp1, freqs_x, kxp, -1)
    gy_re, gy_im = _twiddles(height, hp2, freqs_y, kys, +1)
    gx_re, gx_im = _twiddles(width, wp2, freqs_x, kxp, +1)
    column_weight = torch.ones((kxp, 1), dtype=torch.float64)
    if half:
        column_weight[: freqs_x.numel()] = 2.0
        column_weight[0] = 1.0
        if width % 2 == 0 and int(freqs_x[-1]) == width // 2:
            column_weight[freqs_x.numel() - 1] = 1.0
    natural = torch.fft.ifftshift(pass_mask).to(torch.float64)
    box_mask = torch.zeros((ky, kxp), dtype=torch.float64)
    box_mask[: freqs_y.numel(), : freqs_x.numel()] = natural[freqs_y.remainder(height)[:, None],
                                                             freqs_x.remainder(width)[None, :]]
    dc = tuple(int(torch.nonzero(f == 0)[0]) if bool((f == 0).any()) else -1 for f in (freqs_y, freqs_x))
    put = lambda *mats: tuple(_with_tf32_parts(m).to(device=device, dtype=dtype) for m in mats)
    return FilterPlan(put(fy_re, fy_im, fx_re.t(), fx_im.t()),
                      put(gy_re.t() / height, gy_im.t() / height, gx_re * column_weight / width,
                          gx_im * column_weight / width),
                      box_mask.to(device=device, dtype=dtype), ky, kys, kxp, kxn, kc1, dc, (bh1, bw1), (bh2, bw2))


_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}
OUTPUT_REAL, OUTPUT_ABS_REAL, OUTPUT_MODULUS = 0, 1, 2


def truncated_dft_filter(x: torch.Tensor, plan: FilterPlan, *, complement: torch.Tensor | None = None,
                         output: int = OUTPUT_REAL, clamp: tuple[float, float] | None = None,
                         affine: torch.Tensor | None = None, denorm_in: bool = False, norm_out: bool = False,
                         out_dtype: torch.dtype | None = None, precision: str = "tf32x3") -> torch.Tensor:
    """Filter every image-channel of x (B, C, H, W) with the plan's mask; returns (B, C, H, W)
    contiguous in out_dtype (x.dtype by default), computed in the plan's dtype.

    complement (B,) bool: samples whose output is x - P. affine (2, C) in the plan's dtype: mean and
    std rows, used on load (denorm_in: x·s + m) and/or at the store (norm_out: (y - m)/s).
    precision: "tf32x3" (3xTF32 on tensor cores, split in the kernel: `_dot`), "ieee" (FMA units) or
    "tf32" (one TF32 product: misses SPEC.md §10); fp64 plans always compute in ieee fp64.
    """
    b, c, h, w = x.shape
    out = torch.empty((b, c, h, w), dtype=out_dtype or x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    acc = plan.box_mask.dtype
    split = precision == "tf32x3" and acc == torch.float32
    precision = "ieee" if acc == torch.float64 else ("tf32" if split else precision)
    spectrum = torch.empty((b * c, 2, plan.kys, plan.kxp), dtype=acc, device=x.device)
    comp = complement.to(torch.int8) if complement is not None else out
    mean, std = (affine[0], affine[1]) if affine is not None else (out, out)
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    (bh1, bw1), (bh2, bw2) = plan.spectrum_block, plan.synthesis_block
    common = dict(H=h, W=w, KYS=plan.kys, KXP=plan.kxp, OUTPUT=output, SPLIT=split, PRECISION=precision,
                  ACC=_ACC[acc])
    # num_stages=2 (one tile prefetched) for both kernels: Triton's default 3 stages take the synthesis to
    # 197 KB of shared memory and the model's issue estimate up (PixMIM r = 40: 334 + 319 µs against
    # 317 + 311; 1 stage models faster still, but leaves every global load unhidden)
    triton_launch(_dft_spectrum_kernel, traceable=False)[(b * c * (plan.kxp // plan.kc1),)](  # an opaque op's body
        x, *x.stride(), spectrum, *plan.spectrum_twiddles, plan.box_mask, mean, std, c, *plan.dc,
        HP=plan.spectrum_twiddles[0].shape[2], WP=plan.spectrum_twiddles[2].shape[1], KY=plan.ky, BH=bh1, BW=bw1,
        DENORM_IN=denorm_in, X_TF32=split and x.dtype in (torch.float16, torch.bfloat16),
        KC1=plan.kc1, num_warps=4, num_stages=2, **common)
    hp2, wp2 = plan.synthesis_twiddles[0].shape[1], plan.synthesis_twiddles[2].shape[2]
    triton_launch(_dft_synthesis_kernel, traceable=False)[(b * c * (hp2 // bh2),)](
        x, *x.stride(), out, spectrum, *plan.synthesis_twiddles, comp, mean, std, c, float(lo), float(hi),
        HP=hp2, WP=wp2, BH=bh2, BW=bw2, HAS_COMPLEMENT=complement is not None, CLAMP=clamp is not None,
        NORM_OUT=norm_out, KC=CHUNK, KXN=plan.kxn, num_stages=2, num_warps=8 if bh2 * bw2 >= 32 * 256 else 4, **common)
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
    plan = None if imgs.numel() == 0 else filter_plan(
        MaskGeometry(height, width, radius, not box_is_low, "mfm", outer_radius), imgs.device, dtype, True)
    if plan is None:  # box beyond MAX_BOX (the whole spectrum is cheaper through torch.fft), or no pixels
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
    plan = None if imgs.numel() == 0 else filter_plan(geometry, imgs.device, dtype, not exact)
    if plan is None:  # box beyond MAX_BOX (the whole spectrum is cheaper through torch.fft), or no pixels
        return reference.lowfreq_target(imgs, radius, mean, std, exact)
    affine = _affine(mean, std, imgs.device, dtype)
    return truncated_dft_filter(imgs, plan, output=OUTPUT_MODULUS if exact else OUTPUT_ABS_REAL, affine=affine,
                                denorm_in=affine is not None, norm_out=affine is not None)
