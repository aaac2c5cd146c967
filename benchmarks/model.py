"""A performance model of every GPU kernel at the canonical size, read from the binaries a GPU would run.

    python -m benchmarks.model [--out benchmarks/results/model]   (TRITON_INTERPRET unset)

writes model.md (the table, which columns are read from the binary and which are modelled) and
model.json (the same rows, the specialisation proof, the constants). No GPU is needed: the Triton
launches are the real launchers' (recorded on meta tensors by `codegen.record_triton_launches`),
compiled for sm_90 with Triton's launch-time specialisation (`codegen.compile_for_gpu`, cached by
Triton per kernel source + signature + specialisation); the CUDA kernels are read from the built
`mimkernels/_C*.so` (cuobjdump), their launch geometry modelled from the csrc launchers.

Canonical size (issue 17): B = 256 images 3 × 224 × 224, patch 16 (L = 196 patches, K = 49 kept,
D_pix = 768), tokens D = 768 (encoder) / 512 (decoder), fp32 and bf16, PixMIM r = 40, MFM r = 16; the mask
zoo's generators at their upstream defaults, B = 256 (`mask_zoo_kernels`).

python_tests/test_model.py runs `python -m benchmarks.model --json PATH` and fails on a spill in any
kernel and on a bandwidth-bound kernel whose contiguous side is not vectorised (known offenders in a
named strict xfail list there).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import hashlib
import json
import math
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "benchmarks" / "results" / "model"

# ---- the canonical size -----------------------------------------------------------------------------
BATCH, SIZE, PATCH, CHANNELS = 256, 224, 16, 3
GRID = SIZE // PATCH
LENGTH = GRID * GRID                 # 196 patches
KEEP = LENGTH // 4                   # 49 kept (MAE, mask ratio 0.75)
D_PIX = PATCH * PATCH * CHANNELS     # 768
D_ENC, D_DEC = 768, 512              # ViT-B encoder / MAE decoder width
PIXMIM_RADIUS, MFM_RADIUS = 40.0, 16.0
CANONICAL = {"batch": BATCH, "image": f"{CHANNELS}x{SIZE}x{SIZE}", "patch": PATCH, "length": LENGTH, "keep": KEEP,
             "d_pix": D_PIX, "d_encoder": D_ENC, "d_decoder": D_DEC, "pixmim_radius": PIXMIM_RADIUS,
             "mfm_radius": MFM_RADIUS, "dtypes": ["fp32", "bf16"]}

# ---- the machine (H100 SXM / H200: sm_90) -----------------------------------------------------------
HBM_BYTES_PER_S = 3.35e12            # H100 SXM HBM3 (the H200's 4.8 TB/s would only lower the roofline)
SMS, SCHEDULERS, CLOCK_HZ = 132, 4, 1.6e9
SM_REGS, SM_SMEM, SM_WARPS, SM_BLOCKS = 65536, 228 * 1024, 64, 32
REG_UNIT = 256                       # registers are allocated per warp in units of 256
SMEM_UNIT, SMEM_RESERVED = 128, 1024  # allocation unit; the 1 KB the driver reserves per block (sm_80+)
LATENCY_CYCLES = 600                 # one dependent global-memory round trip (HBM, L2 miss), a round figure

def _tool(name: str) -> str:
    """cuobjdump / nvdisasm: Triton's bundled copies, else the CUDA toolkit's (behind the nvcc wrapper)."""
    try:
        import triton

        bundled = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    for candidate in (os.environ.get("CUDA_HOME", ""), "/usr/local/cuda", *sorted(glob.glob("/usr/local/cuda-*"))):
        path = Path(candidate) / "bin" / name
        if candidate and path.exists():
            return str(path)
    raise FileNotFoundError(f"{name}: neither Triton's bundled copy nor a CUDA toolkit has it")


# ---- figures read from a binary ---------------------------------------------------------------------
_INSTRUCTION = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_MEMORY_OPS = {"LDG": "load", "LDGSTS": "load", "LD": "load", "STG": "store", "ST": "store"}


def _width(opcode: str) -> int:
    """Bits moved per thread by a memory instruction: .128/.64/.U8/.S8/.U16/.S16 suffixes, else 32."""
    parts = opcode.split(".")[1:]
    for part in parts:
        if part in ("128", "64"):
            return int(part)
        if part in ("U8", "S8"):
            return 8
        if part in ("U16", "S16"):
            return 16
    return 32


def _short(opcode: str) -> str:
    """An opcode as the table shows it: the base and its width (LDG.128, STG.U8, LDG: 32-bit)."""
    base = opcode.split(".")[0]
    width = _width(opcode)
    suffix = {128: ".128", 64: ".64", 8: ".8", 16: ".16", 32: ""}[width]
    return base + suffix


@dataclasses.dataclass
class Sass:
    """What one function's SASS says: instruction count, global accesses by opcode and width, local
    (spill) bytes, and the loops (backward branches) with the instructions they hold."""
    instructions: int
    loads: dict          # short opcode -> static count
    stores: dict
    load_bits: dict      # width -> static count (global loads)
    store_bits: dict
    spill_store_bytes: int
    spill_load_bytes: int
    loops: list          # [start address, end address] of each loop, by start
    addresses: list      # address of each counted instruction
    ffma: list           # address of each FFMA (fp32 fused multiply-add: 2 flops per lane)
    mma: int             # tensor-core instructions (HMMA, HGMMA, IMMA, ...)

    def dynamic(self, trips: list[int] | None, addresses: list | None = None) -> int:
        """Instructions one warp issues: each instruction times the trip counts of the loops holding it
        (the static count when no trip counts are given, or they do not match the loops found)."""
        addresses = self.addresses if addresses is None else addresses
        if not trips or len(trips) != len(self.loops):
            return len(addresses)
        total = 0
        for address in addresses:
            factor = 1
            for (start, end), trip in zip(self.loops, trips):
                if start <= address <= end:
                    factor *= max(int(trip), 0)
            total += factor
        return total


def parse_sass(text: str) -> Sass:
    instructions, addresses, ffma, mma = 0, [], [], 0
    loads, stores, load_bits, store_bits = Counter(), Counter(), Counter(), Counter()
    spill_store = spill_load = 0
    loops = []
    for line in text.splitlines():
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        address, body = int(match.group(1), 16), match.group(2)
        tokens = body.split()
        if tokens and tokens[0].startswith("@"):
            tokens = tokens[1:]
        if not tokens:
            continue
        opcode = tokens[0]
        base = opcode.split(".")[0]
        if base == "NOP":
            continue
        if base == "BRA" and len(tokens) > 1:
            target = re.search(r"0x([0-9a-f]+)", body)
            if target and int(target.group(1), 16) < address:  # a backward branch closes a loop
                loops.append((int(target.group(1), 16), address))
            if target and int(target.group(1), 16) == address:  # the trailing self-branch after EXIT
                continue
        instructions += 1
        addresses.append(address)
        if base == "FFMA":
            ffma.append(address)
        elif base.endswith("MMA"):
            mma += 1
        if base in _MEMORY_OPS:
            bits = _width(opcode)
            if _MEMORY_OPS[base] == "load":
                loads[_short(opcode)] += 1
                load_bits[bits] += 1
            else:
                stores[_short(opcode)] += 1
                store_bits[bits] += 1
        elif base == "STL":
            spill_store += _width(opcode) // 8
        elif base == "LDL":
            spill_load += _width(opcode) // 8
    return Sass(instructions, dict(loads), dict(stores), dict(load_bits), dict(store_bits), spill_store, spill_load,
                sorted(loops), addresses, ffma, mma)


_RES_FUNCTION = re.compile(r"^\s*Function (\S+):\s*$")
_RES_FIELDS = re.compile(r"(REG|STACK|SHARED|LOCAL):(\d+)")


def parse_res_usage(text: str) -> dict[str, dict[str, int]]:
    """cuobjdump -res-usage: function -> {REG, STACK, SHARED, LOCAL}."""
    out, name = {}, None
    for line in text.splitlines():
        match = _RES_FUNCTION.match(line)
        if match:
            name = match.group(1)
            continue
        if name and "REG:" in line:
            out[name] = {k: int(v) for k, v in _RES_FIELDS.findall(line)}
            name = None
    return out


def split_sass(text: str) -> dict[str, str]:
    """cuobjdump -sass of a fat binary: function -> its SASS text (the sm_90 copy; the first seen)."""
    out, name, lines = {}, None, []
    for line in text.splitlines():
        match = re.match(r"^\s*Function : (\S+)", line)
        if match:
            if name and name not in out:
                out[name] = "\n".join(lines)
            name, lines = match.group(1), []
            continue
        if name:
            lines.append(line)
    if name and name not in out:
        out[name] = "\n".join(lines)
    return out


def read_binary(path: str) -> tuple[dict, dict]:
    """(res-usage per function, SASS per function) of a cubin or a fat binary (.so): one cuobjdump."""
    done = subprocess.run([_tool("cuobjdump"), "-res-usage", "-sass", path], capture_output=True, text=True,
                          check=True)
    return parse_res_usage(done.stdout), split_sass(done.stdout)


def _cache_dir() -> Path:
    """Figures read from a cubin, by the cubin's hash (cuobjdump costs ~0.5 s a call on a busy machine)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mimkernels" / "model"
    return Path(os.environ.get("MIMKERNELS_MODEL_CACHE", default))


def read_cubin(cubin: bytes) -> tuple[dict, Sass]:
    """(res-usage, SASS figures) of a one-kernel cubin, cached on disk by its sha256."""
    digest = hashlib.sha256(cubin).hexdigest()
    cached = _cache_dir() / f"{digest}.json"
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        entry = json.loads(cached.read_text())
        sass = entry["sass"]
        for key in ("load_bits", "store_bits"):  # JSON keys are strings
            sass[key] = {int(bits): n for bits, n in sass[key].items()}
        sass["loops"] = [tuple(loop) for loop in sass["loops"]]
        return entry["usage"], Sass(**sass)
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        res, sass = read_binary(f.name)
    (name, usage), = res.items()
    figures = parse_sass(sass[name])
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"usage": usage, "sass": dataclasses.asdict(figures)}))
        tmp.replace(cached)
    return usage, figures


def resident_warps(regs: int, smem_bytes: int, warps: int) -> tuple[int, str]:
    """(resident warps per SM, the limiting resource) on sm_90: 64K registers (per warp in units of
    256), 228 KB shared memory (each block also holds the 1 KB the driver reserves), 64 warps, 32 blocks."""
    regs_per_warp = math.ceil(max(regs, 1) * 32 / REG_UNIT) * REG_UNIT
    limits = {"warps": SM_WARPS // warps, "blocks": SM_BLOCKS,
              "registers": (SM_REGS // regs_per_warp) // warps,
              "shared": SM_SMEM // (math.ceil(smem_bytes / SMEM_UNIT) * SMEM_UNIT)}
    blocks = min(limits.values())
    limiter = min(limits, key=lambda k: (limits[k], k != "warps"))
    return blocks * warps, limiter


# ---- the Triton launches at the canonical size --------------------------------------------------------
def _meta(*shape, dtype=torch.float32):
    return torch.empty(shape, dtype=dtype, device="meta")


def _driver_launches() -> list:
    """The fp32 launches of every family's codegen driver at B = 256, 224 px
    (python_tests/<family>/test_codegen.py `launch_every_kernel`, variants=False)."""
    from benchmarks import codegen

    return [launch for family in codegen.family_codegen_modules()
            for launch in codegen.record(family, BATCH, SIZE, variants=False)]


def _canonical_extras() -> list:
    """Launches at the canonical size the driver does not make: the token kernels at D = 768 (encoder:
    random_masking's gather and its backward) and D = 512 (decoder: unshuffle_tokens and its backward;
    the driver uses D = 1024 for all four), and PixMIM's exact target at r = 40 (the driver: r = 30).
    The launcher names here are the families' current ones: rename with them."""
    from benchmarks import codegen
    from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD
    from mimkernels.frequency import triton as F
    from mimkernels.masking import triton as M
    ids, ids_restore = _meta(BATCH, KEEP, dtype=torch.int64), _meta(BATCH, LENGTH, dtype=torch.int64)
    with codegen.record_triton_launches() as recorder:
        tokens = _meta(BATCH, LENGTH, D_ENC)
        M.random_masking_backward(M.random_masking(tokens, ids), tokens, ids, [True])
        x, token = _meta(BATCH, 1 + KEEP, D_DEC), _meta(1, 1, D_DEC)
        M.unshuffle_tokens(x, ids_restore, token)
        M.unshuffle_tokens_backward(_meta(BATCH, 1 + LENGTH, D_DEC), x, ids_restore, token, 1, [True, True])
        F.lowfreq_target(_meta(BATCH, CHANNELS, SIZE, SIZE), PIXMIM_RADIUS, list(IMAGENET_MEAN), list(IMAGENET_STD),
                         True)
    return recorder.launches


def _superseded(launch) -> bool:
    """Driver launches not at the canonical size (their canonical twins come from `_canonical_extras`)."""
    args = launch.arguments
    if launch.name in ("_row_copy_kernel", "_unshuffle_kernel", "_unshuffle_backward_kernel"):
        return True
    if launch.name == "_mae_mask_kernel":
        return args["L"] != LENGTH
    if launch.name in ("_dft_spectrum_kernel", "_dft_synthesis_kernel"):
        return args["OUTPUT"] == 2
    return False


def _bf16_twin(launch, data: tuple[str, ...]):
    """The launch with its data tensors in bf16 (grids, blocks and warps of every launcher depend on
    shapes only, so this is the launch the launcher makes for bf16 inputs; accumulators, masks, ids and
    tables keep their dtypes)."""
    from benchmarks import codegen

    twin = codegen.TritonLaunch.__new__(codegen.TritonLaunch)
    twin.__dict__.update(launch.__dict__)
    twin.arguments = dict(launch.arguments)
    for name in data:
        value = twin.arguments[name]
        twin.arguments[name] = torch.empty_strided(value.shape, value.stride(), dtype=torch.bfloat16, device="meta")
    return twin


def canonical_launches() -> list:
    """Every Triton launch at the canonical size, fp32 and bf16: [(row id, launch)]."""
    launches = [l for l in _driver_launches() if not _superseded(l)] + _canonical_extras()
    rows = []
    for launch in launches:
        spec = TRITON_KERNELS.get(launch.name)
        if spec is None:
            raise KeyError(f"{launch.name}: no model (add it to benchmarks/model.py TRITON_KERNELS)")
        data = spec.data(launch.arguments)
        rows.append(launch)
        if data and all(launch.arguments[n].dtype == torch.float32 for n in data):
            rows.append(_bf16_twin(launch, data))
    ids = [f"{TRITON_KERNELS[l.name].label(l.arguments)} [{_dtype_name(l)}]" for l in rows]
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    return list(zip(ids, rows))


def _dtype_name(launch) -> str:
    data = TRITON_KERNELS[launch.name].data(launch.arguments)
    tensor = launch.arguments[data[0]] if data else None
    return {torch.float32: "fp32", torch.bfloat16: "bf16"}.get(getattr(tensor, "dtype", None), "fp32")


# ---- the model of each Triton kernel ------------------------------------------------------------------
def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _rows_bytes(t: torch.Tensor, rows: int, d: int) -> int:
    return rows * d * t.element_size()


@dataclasses.dataclass(frozen=True)
class KernelModel:
    """label(args): the op; data(args): the pointers in the data dtype (bf16 twins retype them);
    min_bytes(args): the bytes the op must move (inputs read once, outputs written once); bound: what
    the kernel should be limited by ('bandwidth' kernels are checked for vectorisation); sides(args):
    the sides ('load', 'store') whose bulk tensors are contiguous in memory; trips(args): trip counts
    of the SASS loops, by loop start (None: no runtime loops expected); chain(args): global-memory round
    trips one program makes one after the other (a serial loop that waits on its loads each iteration)."""
    label: Callable
    data: Callable
    min_bytes: Callable
    bound: str
    sides: Callable = lambda a: ("load", "store")
    trips: Callable | None = None
    chain: Callable | None = None


def _patch_copy_label(a):
    return {(False, True): "patchify", (False, False): "unpatchify", (True, True): "gather_patches",
            (True, False): "scatter_patches"}[(a["HAS_IDS"], a["TO_PATCHES"])]


def _patch_copy_bytes(a):
    p = a["patch_ptr"]
    rows = p.shape[0] * p.shape[1]
    if a["HAS_IDS"] and not a["TO_PATCHES"]:  # gather_patches' backward writes the whole image (no zero fill)
        return _nbytes(p) + _nbytes(a["img_ptr"]) + _nbytes(a["ids_ptr"])
    return 2 * _nbytes(p) + (rows * 8 if a["HAS_IDS"] else 0)


def _mse_label(a, backward=False):
    name = "norm_pix_mse_loss" if a["FROM_IMAGE"] and a["NORM"] else "masked_mse_loss"
    if not backward:
        return name
    needs = [n for n, flag in (("pred", a["NEED_PRED"]), ("target", a["NEED_TARGET"])) if flag]
    return f"{name} backward ({', '.join(needs)})"


def _mse_bytes(a, backward=False):
    pred, tgt, mask = a["pred_ptr"], a["tgt_ptr"], a["mask_ptr"]
    rows, d = pred.shape[0] * pred.shape[1], pred.shape[2]
    total = _nbytes(pred) + _rows_bytes(tgt, rows, d) + rows * mask.element_size()
    if backward:
        total += a["NEED_PRED"] * _nbytes(pred) + a["NEED_TARGET"] * _rows_bytes(tgt, rows, d)
    else:
        total += rows * a["part_ptr"].element_size()
    return total


def _l1_bytes(a, backward=False):
    xr, img, mask = a["xr_ptr"], a["img_ptr"], a["mask_ptr"]
    total = _nbytes(xr) + _nbytes(img) + _nbytes(mask)
    if backward:
        total += a["NEED_XREC"] * _nbytes(xr) + a["NEED_IMGS"] * _nbytes(img)
    else:
        total += _nbytes(a["part_ptr"])
    return total


def _dft_label(a, part):
    op = {0: f"mfm_filter r={MFM_RADIUS:g}", 1: "pixmim_lowfreq_target approx",
          2: f"pixmim_lowfreq_target exact r={PIXMIM_RADIUS:g}"}[a["OUTPUT"]]
    return f"{op} {part} (box {a['KYS']}x{a['KXP']})"


def _dft_spectrum_trips(a):
    return [math.ceil(a["H"] / a["BH"]), math.ceil(a["W"] / a["BW"])]  # row tiles, column tiles


def _dft_synthesis_trips(a):
    # column tiles, box column chunks (the row chunks are a static_range: unrolled)
    trips = [math.ceil(a["W"] / a["BW"]), a["KXN"] // a["KC"]]
    return [t for t in trips if t > 1]  # single-trip loops leave no backward branch


def _dft_spectrum_bytes(a):
    return _nbytes(a["x_ptr"]) + _nbytes(a["s_ptr"])  # the image read once, the box spectrum written


def _dft_synthesis_bytes(a):
    return _nbytes(a["s_ptr"]) + _nbytes(a["y_ptr"])  # the box spectrum read, the image written


TRITON_KERNELS: dict[str, KernelModel] = {
    "_mae_mask_kernel": KernelModel(
        label=lambda a: "random_mask_indices " + ("(noise)" if a["HAS_NOISE"] else "(philox)")
        + (" per-sample ratios" if a["HAS_KEPT"] else ""),
        data=lambda a: ("noise_ptr",) if a["HAS_NOISE"] else (),
        min_bytes=lambda a: _nbytes(a["ids_keep_ptr"]) + _nbytes(a["ids_restore_ptr"]) + _nbytes(a["mask_ptr"])
        + (_nbytes(a["noise_ptr"]) if a["HAS_NOISE"] else 0),
        bound="latency"),
    "_row_copy_kernel": KernelModel(
        label=lambda a: (f"random_masking D={a['D']}" if a["TO_ROWS"]
                         else f"random_masking backward D={a['D']}"),
        data=lambda a: ("rows_ptr", "x_ptr"),
        min_bytes=lambda a: 2 * _nbytes(a["rows_ptr"]) + _nbytes(a["ids_ptr"]),
        bound="bandwidth"),
    "_unshuffle_kernel": KernelModel(
        label=lambda a: f"unshuffle_tokens D={a['D']}",
        data=lambda a: ("out_ptr", "x_ptr", "tok_ptr"),
        min_bytes=lambda a: _nbytes(a["out_ptr"]) + _nbytes(a["x_ptr"]) + _nbytes(a["ids_ptr"])
        + _nbytes(a["tok_ptr"]),
        bound="bandwidth"),
    "_unshuffle_backward_kernel": KernelModel(
        label=lambda a: f"unshuffle_tokens backward D={a['D']}",
        data=lambda a: ("gx_ptr", "g_ptr"),
        # the op's minimum: g read, grad_x written, the ids, the mask token's gradient (D fp32); the
        # kernel's per-tile partials (1/ROWS of g's rows, fp32) are overhead the ratio shows
        min_bytes=lambda a: _nbytes(a["g_ptr"]) + _nbytes(a["gx_ptr"]) + _nbytes(a["ids_ptr"]) + a["D"] * 4,
        bound="bandwidth"),
    "_patch_copy_kernel": KernelModel(
        label=_patch_copy_label,
        data=lambda a: ("img_ptr", "patch_ptr"),
        min_bytes=_patch_copy_bytes,
        bound="bandwidth",
        # gather_patches' backward: one trip of its search loop per hit (1 when the ids are distinct)
        trips=lambda a: [1] if a["HAS_IDS"] and not a["TO_PATCHES"] else []),
    "_patch_norm_target_kernel": KernelModel(
        label=lambda a: "patch_norm_target",
        data=lambda a: ("out_ptr", "img_ptr"),
        min_bytes=lambda a: 2 * _nbytes(a["out_ptr"]),
        bound="bandwidth"),
    "_patch_norm_target_bwd_kernel": KernelModel(
        label=lambda a: "patch_norm_target backward",
        data=lambda a: ("grad_img_ptr", "grad_ptr", "img_ptr"),
        min_bytes=lambda a: _nbytes(a["grad_ptr"]) + 2 * _nbytes(a["grad_img_ptr"]),
        bound="bandwidth"),
    "_masked_mse_fwd_kernel": KernelModel(
        label=_mse_label,
        data=lambda a: ("pred_ptr", "tgt_ptr"),
        min_bytes=_mse_bytes,
        bound="bandwidth",
        sides=lambda a: ("load",)),
    "_masked_mse_bwd_kernel": KernelModel(
        label=lambda a: _mse_label(a, True),
        data=lambda a: ("grad_pred_ptr", "grad_tgt_ptr", "pred_ptr", "tgt_ptr"),
        min_bytes=lambda a: _mse_bytes(a, True),
        bound="bandwidth"),
    "_masked_l1_fwd_kernel": KernelModel(
        label=lambda a: "masked_l1_loss (SimMIM)",
        data=lambda a: ("xr_ptr", "img_ptr"),
        min_bytes=_l1_bytes,
        bound="bandwidth",
        sides=lambda a: ("load",)),
    "_masked_l1_bwd_kernel": KernelModel(
        label=lambda a: "masked_l1_loss backward (" + ", ".join(
            n for n, f in (("x_rec", a["NEED_XREC"]), ("imgs", a["NEED_IMGS"])) if f) + ")",
        data=lambda a: ("grad_xr_ptr", "grad_img_ptr", "xr_ptr", "img_ptr"),
        min_bytes=lambda a: _l1_bytes(a, True),
        bound="bandwidth"),
    "_hog_kernel": KernelModel(
        label=lambda a: "hog (MaskFeat, patch layout)" if a["PATCH_LAYOUT"] else "hog_map",
        data=lambda a: ("img_ptr",),
        min_bytes=lambda a: _nbytes(a["img_ptr"]) + _nbytes(a["out_ptr"]),
        bound="bandwidth",
        sides=lambda a: ("load",),
        trips=lambda a: [a["NBINS"]]),  # the per-bin cell sums (a block reduction each)
    "_dft_spectrum_kernel": KernelModel(
        label=lambda a: _dft_label(a, "spectrum"),
        data=lambda a: ("x_ptr",),
        min_bytes=_dft_spectrum_bytes,
        bound="compute",
        trips=_dft_spectrum_trips),
    "_dft_synthesis_kernel": KernelModel(
        label=lambda a: _dft_label(a, "synthesis"),
        data=lambda a: ("y_ptr", "x_ptr"),
        min_bytes=_dft_synthesis_bytes,
        bound="compute",
        trips=_dft_synthesis_trips),
}


# ---- the CUDA kernels of _C (geometry modelled from the csrc launchers) -------------------------------
@dataclasses.dataclass(frozen=True)
class CudaKernel:
    """A CUDA kernel at the canonical size: `match` finds its function in _C's SASS (demangled name);
    programs, threads, dynamic shared bytes as its launcher in csrc computes them; min_bytes; bound;
    trips of its SASS loops (None: static count, a lower bound); sides checked for vectorisation."""
    label: str
    match: str
    dtype: str
    programs: int
    threads: int
    min_bytes: int
    bound: str
    dyn_smem: int = 0
    trips: tuple | None = None
    sides: tuple = ()
    launcher: str = ""


def _hog_cuda_smem(pool=8, nbins=9) -> int:
    """csrc/hog/hog.cu hog_tile: tile of 32 px (4 cells of 8), its 1-px halo (then the column sums in the same
    floats), magnitudes, histograms, bins, the bin boundaries."""
    cells = 32 // pool
    side = cells * pool
    floats = max((side + 2) ** 2, cells * nbins * side) + side * side + cells * cells * nbins + 2 * nbins
    return floats * 4 + side * side * 4


def cuda_kernels() -> list[CudaKernel]:
    image = BATCH * CHANNELS * SIZE * SIZE
    hog_out = BATCH * LENGTH * CHANNELS * 9 * 4 * 4  # (B, L, C·nbins·2²) fp32
    tiles = math.ceil(SIZE // 8 / 4) ** 2           # tiles of 4 × 4 cells of 8 px
    rows = []
    for dtype, name, size in (("fp32", "hog_kernel<float>", 4), ("bf16", "hog_kernel<mimkernels::BFloat16>", 2),
                              ("fp16", "hog_kernel<mimkernels::Half16>", 2), ("u8", "hog_kernel<unsigned char>", 1)):
        rows.append(CudaKernel(
            "hog (MaskFeat, patch layout)", name, dtype, BATCH * CHANNELS * tiles, 256, image * size + hog_out,
            "bandwidth", dyn_smem=_hog_cuda_smem(), sides=("load",),
            trips=None, launcher="hog.cu launch: B·C·tiles blocks of 256 (5 per SM by launch bounds), tile 4×4 cells, "
                     "dynamic smem hog_tile"))
    sim_n = GRID  # SimMIM ViT-B/16 at 224: 7×7 mask cells of 32 px, scale 2 -> 14×14 mask
    rows += [
        CudaKernel("simmim_mask (7x7 cells -> 14x14)", "simmim_mask_kernel<true>", "u8", math.ceil(BATCH / 2), 64,
                   BATCH * sim_n * sim_n, "latency", dyn_smem=2 * math.ceil(49 * 9 / 16) * 16,
                   launcher="mask_generators.cu: one warp per sample, 2 per block, keys and marks in shared"),
        CudaKernel("block_mask (14x14, 78/15)", "block_mask_kernel<true>", "u8", math.ceil(BATCH / 2), 64,
                   BATCH * GRID * GRID, "latency", dyn_smem=2 * math.ceil(GRID * GRID / 16) * 16,
                   launcher="mask_generators.cu: one warp per sample, 2 per block, the mask in shared"),
        CudaKernel("mask_avg_dist (14x14, patch 16)", "mask_avg_dist_kernel", "u8", BATCH, 64,
                   BATCH * GRID * GRID + BATCH * 4, "latency",
                   launcher="mask_generators.cu: one block of 64 per sample"),
        CudaKernel("random_mask_indices (cuda)", "mae_mask_indices_kernel", "i64", BATCH, 256,
                   BATCH * (KEEP * 8 + LENGTH * 8 + LENGTH * 4), "latency",
                   launcher="masking.cu: one block of 256 per sample"),
        CudaKernel("philox_fill (B·L keys)", "philox_fill_kernel", "u32", math.ceil(BATCH * LENGTH / 4 / 256), 256,
                   BATCH * LENGTH * 4, "bandwidth", sides=("store",),
                   launcher="rng.cu: one thread per uint4, blocks of 256"),
    ]
    return rows + mask_zoo_kernels()


def _cu_constant(source: str, name: str) -> int:
    """`constexpr int <name> = <n>;` of csrc/<source>: the launcher's own launch constants."""
    found = re.findall(r"constexpr int " + re.escape(name) + r" = (\d+);", (ROOT / "csrc" / source).read_text())
    if len(found) != 1:
        raise KeyError(f"csrc/{source}: {len(found)} definitions of {name}")
    return int(found[0])


# The mask zoo at its upstream defaults (mimkernels/mask_zoo/SPEC.md, the ops' default arguments), B = 256:
# I-JEPA ViT-H/14 at 224 (16×16 grid, 4 targets + 1 context), V-JEPA / VideoMAE 16 frames at tubelet 2,
# 224 px / patch 16 (8×14×14), UM-MAE and DINO 16×16, data2vec 2.0 L = 196 with 16 clones, score masks N = 196.
ZOO_GRID_2D, ZOO_VIDEO = 16, (8, GRID, GRID)
IJEPA_BLOCKS, VJEPA_BLOCKS, D2V_CLONES = 1 + 4, 8, 16
DINO_SLOT_BYTES = 32  # dino_mask.h DinoSlot: shuffle key, count, two shifts (8 bytes each)


def mask_zoo_kernels() -> list[CudaKernel]:
    """The mask zoo's CUDA kernels (csrc/mask_zoo/*.cu), threads per block read from their launchers.
    Every one is latency-bound: a few hundred KB of masks made by short sequential per-sample (or per-row)
    bodies, each thread's serial path (its runtime loops: the issue figure is a lower bound) being the time."""
    video_cells = math.prod(ZOO_VIDEO)
    cells_2d = ZOO_GRID_2D * ZOO_GRID_2D
    mb = _cu_constant("mask_zoo/multiblock.cu", "kMultiblockThreads")
    video = _cu_constant("mask_zoo/video_masks.cu", "kThreads")
    tube_warps = _cu_constant("mask_zoo/video_masks.cu", "kWarpsPerBlock")
    dino_slot = _cu_constant("mask_zoo/dino_mask.cu", "kSlotThreads")
    dino_warps = _cu_constant("mask_zoo/dino_mask.cu", "kRowWarps")
    d2v = _cu_constant("mask_zoo/data2vec_mask.cu", "kThreads")
    score = _cu_constant("mask_zoo/score_mask.cu", "kThreads")
    d2v_rows = BATCH * D2V_CLONES
    dino_masked = BATCH // 2  # mask_probability 0.5: n + 1 strata bounds read
    one = "one thread per sample, blocks of {}"
    rows = [
        CudaKernel(f"multiblock_mask (I-JEPA {ZOO_GRID_2D}x{ZOO_GRID_2D}, 4 targets + context)",
                   "multiblock_2d_kernel", "u8", math.ceil(BATCH / mb), mb,
                   BATCH * IJEPA_BLOCKS * (cells_2d * (1 + 8) + 8), "latency",
                   launcher=f"multiblock.cu: {one.format(mb)}; per sample 5 placements (the context's a rejection "
                            "loop), 5 block masks and int64 lists of 256 cells (~5,000 stores), the context list "
                            "(~100 cells) heap-sorted in global memory (fixed variant: ~700 dependent sift steps)"),
        CudaKernel(f"multiblock_mask_3d (V-JEPA {'x'.join(map(str, ZOO_VIDEO))}, {VJEPA_BLOCKS} blocks)",
                   "multiblock_3d_kernel", "u8", math.ceil(BATCH / mb), mb,
                   BATCH * 2 * (video_cells * (1 + 8) + 8), "latency",
                   launcher=f"multiblock.cu: {one.format(mb)}; per sample 8 boxes cut from 1,568 cells, then both "
                            "lists (1,568 int64 in all) keyed and heap-sorted in global memory (fixed variant: "
                            "~15,000 dependent sift steps, the thread's 25 KB of lists in L2)"),
        CudaKernel(f"tube_mask (VideoMAE {'x'.join(map(str, ZOO_VIDEO))}, 0.9)", "tube_mask_kernel", "u8",
                   math.ceil(BATCH / tube_warps), video, BATCH * video_cells, "latency",
                   launcher=f"video_masks.cu: one warp per sample, {tube_warps} per block; lane 0 draws frame 0 "
                            "(Floyd, 20 picks of 196), the lanes copy it to the other 7 frames byte by byte"),
        CudaKernel(f"running_cell_mask (VideoMAE v2 {'x'.join(map(str, ZOO_VIDEO))}, 0.5)",
                   "running_cell_mask_kernel", "u8", min(math.ceil(BATCH * video_cells / video), 65536), video,
                   BATCH * video_cells, "latency",
                   launcher=f"video_masks.cu: one thread per output byte, blocks of {video} (grid-stride past "
                            "65,536 blocks): per byte a Philox-10 call and 4 int64 divisions (each a 32-bit path and a called "
                            "64-bit one: 446 static instructions); 0.4 MB written: launch-latency-bound"),
        CudaKernel(f"uniform_mask (UM-MAE {ZOO_GRID_2D}x{ZOO_GRID_2D}, secondary 0.25)", "uniform_mask_kernel",
                   "u8", math.ceil(BATCH / video), video, BATCH * 2 * cells_2d, "latency",
                   launcher=f"video_masks.cu: {one.format(video)}; per sample a 64-step partial Fisher-Yates on "
                            "its 128 candidate rows (global workspace), 2 × 256 bytes written, 16 Floyd picks"),
        CudaKernel(f"dino_collate_masks 1/3 slot plans ({ZOO_GRID_2D}x{ZOO_GRID_2D})", "dino_slot_kernel", "i64",
                   math.ceil(BATCH / dino_slot), dino_slot, BATCH * DINO_SLOT_BYTES + (dino_masked + 1) * 4,
                   "latency", launcher=f"dino_mask.cu: one thread per slot, blocks of {dino_slot}"),
        CudaKernel(f"dino_collate_masks 2/3 shuffle ({ZOO_GRID_2D}x{ZOO_GRID_2D})", "dino_shuffle_kernel", "i64",
                   math.ceil(BATCH / dino_slot), dino_slot, 2 * BATCH * DINO_SLOT_BYTES, "latency",
                   launcher=f"dino_mask.cu: one thread per slot, blocks of {dino_slot}, each counting the smaller of "
                            "all B shuffle keys (256 independent 8-byte loads)"),
        CudaKernel(f"dino_collate_masks 3/3 rows ({ZOO_GRID_2D}x{ZOO_GRID_2D})", "dino_row_kernel", "u8",
                   math.ceil(BATCH / dino_warps), dino_warps * 32, BATCH * (cells_2d + DINO_SLOT_BYTES), "latency",
                   launcher=f"dino_mask.cu: one warp per row, {dino_warps} per block: block_mask.h's warp body, "
                            "then dino_finish_row, the row's scratch in the workspace"),
        CudaKernel(f"data2vec_block_mask (14x14, K={D2V_CLONES} clones)", "data2vec_mask_kernel", "u8",
                   math.ceil(d2v_rows / d2v), d2v, d2v_rows * LENGTH, "latency",
                   launcher=f"data2vec_mask.cu: one thread per mask row (B·K = {d2v_rows:,}), blocks of {d2v}; "
                            "per row 5 blocks of 3×3, a count fix by selection sampling over 196 cells"),
    ]
    for dtype, name, size in (("fp32", "score_mask_kernel<float>", 4), ("fp64", "score_mask_kernel<double>", 8)):
        rows.append(CudaKernel(
            f"score_mask (N={LENGTH})", name, dtype, math.ceil(BATCH / score), score, BATCH * LENGTH * (size + 1),
            "latency", launcher=f"score_mask.cu: {one.format(score)}; per sample a heap sort of its 196 token ids "
                                "(int32 workspace in global memory: ~1,300 sift steps, each a load of two ids "
                                "then of their scores), then the guided/fill/hint selection"))
    return rows


def _demangle(names: list[str]) -> dict[str, str]:
    done = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {n: n for n in names}
    return dict(zip(names, done.stdout.splitlines()))


# ---- rows --------------------------------------------------------------------------------------------
def vector_fraction(sass: Sass, side: str, elem_bits: int) -> float | None:
    """Of the bits one thread moves through global `side` accesses at least as wide as the data
    element, the share moved by accesses wider than the element and >= 64 bits (narrower accesses,
    masks and the like, are not the contiguous data). None when the side has no such access."""
    counts = sass.load_bits if side == "load" else sass.store_bits
    total = sum(bits * n for bits, n in counts.items() if bits >= elem_bits)
    vector = sum(bits * n for bits, n in counts.items() if bits > elem_bits and bits >= 64)
    return vector / total if total else None


VECTOR_THRESHOLD = 2 / 3


def _row(kind, row_id, name, label, dtype, programs, warps, regs, spill_st, spill_ld, stack, smem, sass: Sass,
         min_bytes, bound, sides, trips, elem_bits, chain=None, note=""):
    resident, limiter = resident_warps(regs, smem, warps)
    dynamic = sass.dynamic(trips)
    loops_known = not sass.loops or (trips is not None and len(trips) == len(sass.loops))
    roofline_s = min_bytes / HBM_BYTES_PER_S
    # every scheduler issues one warp instruction per clock; a warp issues at most one per clock
    issue_s = dynamic * max(1.0, warps * programs / (SMS * SCHEDULERS)) / CLOCK_HZ
    latency_s = 0.0
    if chain:
        waves = math.ceil(programs / max(1, (resident // warps) * SMS))
        latency_s = chain * LATENCY_CYCLES * waves / CLOCK_HZ
    model_s = max(roofline_s, issue_s, latency_s)
    fractions = {side: vector_fraction(sass, side, elem_bits) for side in sides}
    scalar_sides = [s for s, f in fractions.items() if f is not None and f < VECTOR_THRESHOLD]
    return {
        "id": row_id, "kind": kind, "kernel": name, "op": label, "dtype": dtype, "programs": programs,
        "warps": warps, "registers": regs, "spill_store_bytes": spill_st, "spill_load_bytes": spill_ld,
        "stack_bytes": stack, "shared_bytes": smem, "resident_warps": resident, "occupancy_limit": limiter,
        "loads": sass.loads, "stores": sass.stores, "sass_instructions": sass.instructions,
        "loops": len(sass.loops), "loop_trips": list(trips) if trips and loops_known else None,
        "issued_instructions_per_warp": dynamic, "issue_is_lower_bound": not loops_known,
        "ffma_gflop": sass.dynamic(trips, sass.ffma) * 32 * 2 * warps * programs / 1e9, "mma_instructions": sass.mma,
        "min_bytes": min_bytes, "roofline_us": roofline_s * 1e6, "issue_us": issue_s * 1e6,
        "latency_chain": chain, "latency_us": latency_s * 1e6 if chain else None,
        "model_us": model_s * 1e6, "model_over_roofline": model_s / roofline_s if roofline_s else None,
        "bound": bound, "contiguous_sides": list(sides), "vector_fraction": fractions,
        "scalar_contiguous_sides": scalar_sides if bound == "bandwidth" else [], "note": note,
    }


def _elem_bits(launch) -> int:
    data = TRITON_KERNELS[launch.name].data(launch.arguments)
    return launch.arguments[data[0]].element_size() * 8 if data else 32


_RESULT_CACHE: dict = {}


def _compiled_figures(launch, *, specialized=True) -> tuple[dict, Sass, int, int]:
    """(res-usage, SASS, Triton's dynamic shared bytes, warps) of a launch's binary, compiled once per
    binary key in this process (Triton's cache keeps the compiles across runs)."""
    from benchmarks import codegen

    key = (codegen.binary_key(launch), specialized) if specialized else (launch.key(), specialized)
    if key not in _RESULT_CACHE:
        compiled = codegen.compile_for_gpu(launch, specialized=specialized)
        usage, sass = read_cubin(compiled.asm["cubin"])
        _RESULT_CACHE[key] = (usage, sass, compiled.metadata.shared, compiled.metadata.num_warps)
    return _RESULT_CACHE[key]


def triton_rows(report=print) -> list[dict]:
    rows = []
    for row_id, launch in canonical_launches():
        spec = TRITON_KERNELS[launch.name]
        t0 = time.perf_counter()
        usage, sass, shared, warps = _compiled_figures(launch)
        a = launch.arguments
        programs = launch.grid[0] * launch.grid[1] * launch.grid[2]
        smem = shared + max(usage.get("SHARED", 0), SMEM_RESERVED)
        rows.append(_row("triton", row_id, launch.name, spec.label(a), _dtype_name(launch), programs, warps,
                         usage["REG"], sass.spill_store_bytes, sass.spill_load_bytes, usage.get("STACK", 0), smem,
                         sass, spec.min_bytes(a), spec.bound, spec.sides(a) if spec.bound == "bandwidth" else (),
                         spec.trips(a) if spec.trips else None, _elem_bits(launch),
                         chain=spec.chain(a) if spec.chain else None))
        report(f"{row_id:70s} {time.perf_counter() - t0:6.1f}s")
    return rows


def native_library() -> str:
    found = sorted(glob.glob(str(ROOT / "mimkernels" / "_C*.so")))
    if not found:
        raise FileNotFoundError("mimkernels/_C*.so: build the extension first (pip install -e .)")
    return found[0]


def cuda_rows() -> list[dict]:
    """The CUDA kernels' rows; none when _C was built without CUDA (python_tests/test_model.py expects the same)."""
    from mimkernels import _native

    if not (_native.available() and _native.cuda_built()):
        return []
    res, sass = read_binary(native_library())
    names = _demangle(sorted(set(res) | set(sass)))
    rows = []
    for k in cuda_kernels():
        found = [m for m, d in names.items() if re.search(r"(^|::)" + re.escape(k.match) + r"\(", d)]
        if len(found) != 1:
            raise KeyError(f"{k.match}: {len(found)} functions in {native_library()}")
        mangled = found[0]
        usage, s = res[mangled], parse_sass(sass[mangled])
        warps = math.ceil(k.threads / 32)
        smem = k.dyn_smem + max(usage.get("SHARED", 0), SMEM_RESERVED)
        elem = {"fp32": 32, "bf16": 16, "fp16": 16, "u8": 8, "i64": 64, "u32": 32, "fp64": 64}[k.dtype]
        rows.append(_row("cuda", f"{k.label} [cuda {k.dtype}]", k.match, k.label, k.dtype,
                         k.programs, warps, usage["REG"], s.spill_store_bytes, s.spill_load_bytes,
                         usage.get("STACK", 0), smem, s, k.min_bytes, k.bound,
                         k.sides if k.bound == "bandwidth" else (), k.trips, elem, note=k.launcher))
    return rows


def specialisation_proof() -> dict:
    """The fp32 copy kernels at the canonical size (random_masking, unpatchify), compiled with and without
    the launch specialisation: global loads and stores by width in each SASS."""
    proof = {}
    for row_id, launch in canonical_launches():
        if not (row_id.startswith(("random_masking D", "unpatchify")) and row_id.endswith("[fp32]")):
            continue
        entry = {}
        for specialized in (True, False):
            _, sass, _, _ = _compiled_figures(launch, specialized=specialized)
            entry["specialised" if specialized else "unspecialised"] = {"loads": sass.loads, "stores": sass.stores}
        proof[row_id] = entry
    return proof


# ---- the report ---------------------------------------------------------------------------------------
def _fmt_ops(ops: dict) -> str:
    order = lambda k: (k.split(".")[0], -{"128": 128, "64": 64, "16": 16, "8": 8}.get(k.split(".")[-1], 32))
    return " ".join(f"{k}×{v}" for k, v in sorted(ops.items(), key=lambda kv: order(kv[0]))) or "–"


def _us(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def markdown(data: dict) -> str:
    rows = data["rows"]
    c = data["constants"]
    header = f"""# Performance model of every GPU kernel (sm_90, no GPU)

Generated by `python -m benchmarks.model` at git {data['git']} with Triton {data['triton']} (ptxas {data['ptxas']});
CUDA kernels read from `{data['native']}` (built with {data['nvcc']}). Canonical size: B = {BATCH},
{CHANNELS}×{SIZE}×{SIZE}, patch {PATCH} (L = {LENGTH}, K = {KEEP} kept, D_pix = {D_PIX}), tokens D = {D_ENC} (encoder:
gather/scatter) / {D_DEC} (decoder: unshuffle), fp32 and bf16, PixMIM r = {PIXMIM_RADIUS:g}, MFM r = {MFM_RADIUS:g}.
The mask zoo's generators at their upstream defaults (mimkernels/mask_zoo/SPEC.md), B = {BATCH}: I-JEPA
{ZOO_GRID_2D}×{ZOO_GRID_2D} with 4 targets + 1 context, V-JEPA (8 blocks), VideoMAE tube (0.9) and running cell (0.5)
on {'×'.join(map(str, ZOO_VIDEO))}, UM-MAE and DINO {ZOO_GRID_2D}×{ZOO_GRID_2D}, data2vec 2.0 L = {LENGTH} with K = {D2V_CLONES}
clones, score masks N = {LENGTH}.
This is a model, not a measurement: `benchmarks/run_gpu.sh` on a GPU measures, and where the two disagree
the model is wrong.

## Columns

Read from the binary (the cubin Triton builds with its launch-time specialisation, or `_C`'s sm_90 SASS):
- **regs**: registers per thread; **stack**: local frame, bytes per thread; **spill st/ld**: bytes of local
  stores/loads (Σ widths of STL/LDL in the SASS: the figures `ptxas -v` prints as spill stores/loads, or, with
  a stack frame, arrays the compiler keeps in local memory, which `ptxas -v` does not count as spills), from
  `cuobjdump -res-usage` and `-sass`;
- **smem**: shared memory per block (Triton's metadata, or the CUDA launcher's dynamic bytes, plus the 1 KB
  the driver reserves per block);
- **loads / stores**: static global memory instructions by width in the SASS (`LDG.128` = 128 bits per
  thread, `LDG` = 32, `.16`/`.8` sub-word, LDGSTS = cp.async); **instr**: static SASS instructions (NOPs
  excluded); **FFMA GFLOP / MMA**: the fp32 FMAs the grid issues (static FFMAs, times loop trips where known,
  × 32 lanes × 2 flops × warps × programs) and the static count of tensor-core (MMA) instructions.

Modelled:
- **programs** (the grid; for CUDA kernels the geometry of the csrc launcher at this size), **warps** per program;
- **res. warps/SM**: from registers, shared memory and warps at sm_90's limits ({SM_REGS // 1024}K registers per
  SM, allocated per warp in units of {REG_UNIT}; {SM_SMEM // 1024} KB shared; {SM_WARPS} warps; {SM_BLOCKS} blocks), with the
  limiting resource;
- **min MB**: the bytes the op must move: its inputs read once and its outputs written once (the kernel's
  contract: e.g. a masked loss reads every row, whatever the mask);
- **roofline µs** = min bytes / {c['hbm_TB_per_s']} TB/s (H100 SXM HBM3);
- **issue µs** = issued instructions per warp × warps × programs / ({SMS} SMs × {SCHEDULERS} schedulers ×
  {CLOCK_HZ / 1e9:g} GHz), one warp instruction per scheduler per clock, and never less than one warp's own
  instructions at one per clock (a grid smaller than the schedulers cannot spread). Issued instructions per
  warp = the static SASS count, the instructions inside loops multiplied by the loops' trip counts where the
  model knows them (↻); **≥** marks runtime loops of unknown trips (a lower bound). It ignores latency,
  memory stalls and the cost of spill traffic: a floor, not a prediction;
- **latency µs**, where a kernel makes global-memory round trips one after the other (a serial loop that
  waits on its loads each iteration): round trips × {LATENCY_CYCLES} cycles × waves of programs;
- **model µs** = max(roofline, issue, latency); **×roof** = model / roofline (for the latency-bound mask
  generators and index sorts, whose roofline is a few bytes, the ratio says little: see their grid and issue
  floor);
- **vec**: for bandwidth-bound kernels, per contiguous side (L = loads, S = stores), the share of the bits a
  thread moves through global accesses at least as wide as the element that go through accesses wider than
  the element and ≥ 64 bits; **scalar** (below {VECTOR_THRESHOLD:.0%}) fails CI (python_tests/test_model.py), as does
  any spill.

| op | dtype | kernel | programs | warps | regs | spill st/ld B | stack B | smem KB | res. warps/SM | loads (SASS) | stores (SASS) | instr | FFMA GFLOP / MMA | min MB | roofline µs | issue µs | latency µs | model µs | ×roof | vec |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"""
    lines = header.split("\n")
    for r in rows:
        vec = " ".join(f"{s[0].upper()} {'–' if f is None else f'{f:.0%}'}"
                       + (" **scalar**" if s in r["scalar_contiguous_sides"] else "")
                       for s, f in r["vector_fraction"].items()) or ("compute" if r["bound"] == "compute"
                                                                     else r["bound"])
        spill = f"**{r['spill_store_bytes']:,}/{r['spill_load_bytes']:,}**" if r["spill_store_bytes"] or \
            r["spill_load_bytes"] else "0"
        issue = ("≥" if r["issue_is_lower_bound"] else "↻" if r["loop_trips"] else "") + _us(r["issue_us"])
        kernel = r["kernel"].replace("mimkernels::", "")
        lines.append(
            f"| {r['op']} | {r['dtype']} | `{kernel}` | {r['programs']:,} | {r['warps']} | {r['registers']} | {spill} | "
            f"{r['stack_bytes']:,} | {r['shared_bytes'] / 1024:.1f} | {r['resident_warps']} ({r['occupancy_limit']}) | "
            f"{_fmt_ops(r['loads'])} | {_fmt_ops(r['stores'])} | {r['sass_instructions']:,} | "
            f"{r['ffma_gflop']:,.1f} / {r['mma_instructions']} | "
            f"{r['min_bytes'] / 1e6:,.1f} | {_us(r['roofline_us'])} | {issue} | "
            f"{'–' if r['latency_us'] is None else _us(r['latency_us'])} | {_us(r['model_us'])} | "
            f"{r['model_over_roofline']:.2f} | {vec} |")
    lines += ["", "## Headlines", ""]
    lines += headlines(rows)
    proof = data["specialisation_proof"]
    lines += ["", "## The launch specialisation, shown", "",
              ("The same launch compiled as `codegen.compile_for_gpu` does now (Triton's binder: 16-byte alignment "
               "and divisibility, constant 1s) and as it did before (the plain signature):"), "",
              "| launch | specialised loads | specialised stores | unspecialised loads | unspecialised stores |",
              "|---|---|---|---|---|"]
    for row_id, entry in proof.items():
        s, u = entry["specialised"], entry["unspecialised"]
        lines.append(f"| {row_id} | {_fmt_ops(s['loads'])} | {_fmt_ops(s['stores'])} | {_fmt_ops(u['loads'])} | "
                     f"{_fmt_ops(u['stores'])} |")
    lines += ["", "## CUDA launch geometry (modelled from csrc)", ""]
    for r in rows:
        if r["kind"] == "cuda" and r["note"]:
            lines.append(f"- {r['id']}: {r['note']}.")
    return "\n".join(lines) + "\n"


def headlines(rows: list[dict]) -> list[str]:
    out = []
    ranked = sorted((r for r in rows if r["bound"] != "latency"), key=lambda r: -r["model_over_roofline"])
    out.append("Furthest from roofline (model / roofline, bandwidth- and compute-bound kernels): " + "; ".join(
        f"{r['id']} {r['model_over_roofline']:.1f}× ({_us(r['model_us'])} vs {_us(r['roofline_us'])} µs"
        + (", a lower bound" if r["issue_is_lower_bound"] else "") + ")" for r in ranked if r["model_over_roofline"] > 1.3)
        + ".")
    out.append("")
    out.append("Within 1.3× of roofline: " + ", ".join(
        r["id"] for r in ranked if r["model_over_roofline"] <= 1.3) + ".")
    out.append("")
    out.append("Latency-bound (grid, the SMs it reaches, issue floor): " + "; ".join(
        f"{r['id']}: {r['programs']:,} programs of {r['warps']} warps on {min(r['programs'], SMS)} of {SMS} SMs, "
        f"≥{_us(r['issue_us'])} µs" for r in rows if r["bound"] == "latency") + ".")
    fma_peak = SMS * 128 * 2 * CLOCK_HZ  # fp32 FMA lanes per SM on sm_90
    out.append("")
    out.append("Compute-bound: " + "; ".join(
        f"{r['id']}: {r['ffma_gflop']:,.1f} GFLOP of FFMA and {r['mma_instructions']} tensor-core instructions, "
        f"≥{r['ffma_gflop'] * 1e9 / fma_peak * 1e3:,.2f} ms on the FMA units alone ({fma_peak / 1e12:.0f} TFLOP/s "
        f"at {CLOCK_HZ / 1e9:g} GHz), {r['resident_warps']} resident warps/SM ({r['occupancy_limit']})"
        for r in rows if r["bound"] == "compute") + ".")
    spills = [r for r in rows if r["spill_store_bytes"] or r["spill_load_bytes"]]
    out.append("")
    out.append("Local-memory traffic (spills, or arrays in a stack frame): " + ("; ".join(
        f"{r['id']}: {r['spill_store_bytes']:,} B stores / {r['spill_load_bytes']:,} B loads per thread, "
        f"{r['stack_bytes']:,} B stack, {r['registers']} registers" for r in spills) if spills else "none") + ".")
    scalar = [r for r in rows if r["scalar_contiguous_sides"]]
    out.append("")
    out.append("Bandwidth-bound kernels with a scalar contiguous side: " + ("; ".join(
        f"{r['id']} (" + ", ".join(f"{side}s {_fmt_ops(r[side + 's'])}" for side in r["scalar_contiguous_sides"]) + ")"
        for r in scalar) if scalar else "none") + ".")
    return out


def _versions() -> dict:
    import triton

    def run(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    ptxas = re.search(r"release ([\d.]+)", run(str(Path(_tool("cuobjdump")).with_name("ptxas")), "--version"))
    git = run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD").strip()
    info = {}
    with contextlib.suppress(OSError, ValueError):
        info = json.loads((ROOT / "mimkernels" / "_build_info.json").read_text())
    try:
        native = Path(native_library()).name
    except FileNotFoundError:
        native = "(no _C built)"
    return {"triton": triton.__version__, "ptxas": ptxas.group(1) if ptxas else "?", "git": git or "?",
            "nvcc": info.get("nvcc", "?"), "native": native}


def build(report=print) -> dict:
    from mimkernels import _backends

    if _backends.TRITON_INTERPRET:
        raise RuntimeError("run without TRITON_INTERPRET: the interpreter never runs Triton's code generator")
    start = time.perf_counter()
    rows = triton_rows(report) + cuda_rows()
    data = {"canonical": CANONICAL,
            "constants": {"hbm_TB_per_s": HBM_BYTES_PER_S / 1e12, "sms": SMS, "schedulers": SCHEDULERS,
                          "clock_GHz": CLOCK_HZ / 1e9, "sm_registers": SM_REGS, "sm_shared_bytes": SM_SMEM,
                          "sm_warps": SM_WARPS, "sm_blocks": SM_BLOCKS, "vector_threshold": VECTOR_THRESHOLD},
            **_versions(), "rows": rows, "specialisation_proof": specialisation_proof()}
    data["seconds"] = time.perf_counter() - start
    return data


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(OUT_DIR), help="folder for model.md and model.json")
    parser.add_argument("--json", help="write only this JSON file (the CI test's mode)")
    args = parser.parse_args(argv)
    data = build(report=(lambda *_: None) if args.json else print)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(json.dumps({k: v for k, v in data.items() if k != "seconds"}, indent=1) + "\n")
    (out / "model.md").write_text(markdown(data))
    print(f"wrote {out / 'model.md'} and model.json ({len(data['rows'])} rows) in {data['seconds']:.0f}s")


if __name__ == "__main__":
    main()
