"""Seeded adversarial cases: `make_case(op, index, seed, device)` is a deterministic function of its
arguments, so that a worker process rebuilds any case from three numbers and a failure names a case
that anyone can rerun (`python -m python_tests.fuzz.run --op OP --case INDEX`).

A case is the op's tiny valid call (its family's `examples.valid_calls`) with one or two arguments
mutated; the category of the first mutation is the case's category (the unit of KNOWN_FAILURES).
Categories:
  ids_out_of_range  an id tensor (ids_keep, ids_restore) with entries past the end, negative, or huge
                    (10**6, 2**31, 2**62, -2**63): the defined result is zeros in the forward for those
                    rows and nothing scattered in the backward (SPEC.md of masking) -- the oracle
  ids_duplicate     ids in range but repeated / not a permutation (the reference defines the result)
  nan_inf           NaN / ±Inf in a float tensor
  extreme_values    ±1e38, denormals, -0.0 in a float tensor
  zero_size         zero batch (every tensor's dim 0 and `batch`), or another dim emptied
  count_limits      an integer argument at or past its limits (0, 1, L, L + 1, 2**31, 2**63 - 1, -1, ...)
  float_limits      a float argument NaN, ±Inf, 0, -0.0, negative, 1e308
  huge_patch        patch sizes and window sizes far past the image (2**16, 2**31, 2**62)
  stride0           an expanded (stride-0) view of a tensor
  overlap           an overlapping as_strided view (several elements share memory)
  noncontig         a transposed / sliced view
  canary            every tensor inside a larger buffer of sentinel values: a read past a tensor shows
                    as a sentinel in the result, a write as a changed sentinel
  dtype             another dtype (fp16, bf16, fp64, int32, int64, bool, complex64)
  shape             a dimension added, removed or resized
  seq_values        a sequence argument (mean, std, clamp, grid_size) with bad entries or length
  meta              a tensor on the meta device
"""
from __future__ import annotations

import functools
import inspect
import math
import os
import random
from dataclasses import dataclass, field

import torch

import mimkernels
from mimkernels.info import family_examples, public_ops

SENTINEL = 7777.0
HUGE_INTS = [2**16, 2**31 - 1, 2**31, 2**32 + 4, 2**53 + 1, 2**62, 2**63 - 1]
LIMIT_INTS = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 36, 37, 64, 65, 255, 256, 257, -1, -2, -2**31, -2**63]
BAD_FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e-300, 1e308, 2.0**53, 0.5, 1.0, 1.0000001]
# parameters whose default is None: what kind of value they take
NONE_KINDS = {"max_num_patches": "int", "max_aspect": "float", "outer_radius": "float", "in_chans": "int",
              "mean": "seq", "std": "seq", "grid_size": "seq", "noise": "tensor", "freq_mask": "tensor"}
PATCH_NAMES = {"patch_size", "pool", "gaussian_window", "mask_patch_size", "model_patch_size", "input_size"}
ID_ARGS = {"gather_patches": "ids_keep", "unshuffle_tokens": "ids_restore"}
NOT_MUTATED = {"backend", "generator", "device", "seed", "sample_offset", "variant", "center", "dtype"}


@dataclass
class Case:
    op: str
    index: int
    category: str
    label: str
    arguments: dict                      # parameter name -> value (bound, defaults applied)
    debug: bool = False                  # MIMKERNELS_DEBUG=1 for this case
    canaries: list = field(default_factory=list)  # (buffer, start, numel, sentinel-filled copy)
    grad: bool = False                   # also run a backward (float inputs requiring grad)

    @property
    def nonfinite(self) -> bool:
        """NaN/Inf or ±1e38 (which overflows to Inf) in an input: results are compared where finite."""
        text = self.label.lower()
        return any(k in text for k in ("nan", "inf", "e+38", "e+308"))

    def call(self, backend: str):
        fn = getattr(mimkernels, self.op)
        return fn(**self.arguments, backend=backend)


def base_arguments(op: str, device: torch.device) -> dict:
    """The op's valid call from its family's table, bound, defaults applied; fresh tensors each time (the
    table is built once per family and device)."""
    out = dict(_base(op, str(device)))
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            out[k] = torch.empty_strided(v.size(), v.stride(), dtype=v.dtype, device=v.device).copy_(v)
    return out


@functools.lru_cache(maxsize=None)
def _base(op: str, device: str) -> dict:
    args, kwargs = family_examples(op).valid_calls(torch.device(device))[op]
    fn = getattr(mimkernels, op)
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    out = dict(bound.arguments)
    out.pop("backend", None)
    return out


def _kind(name: str, value) -> str | None:
    if name in NOT_MUTATED:
        return None
    if isinstance(value, torch.Tensor):
        return "tensor"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (tuple, list)):
        return "seq"
    if value is None:
        return NONE_KINDS.get(name)
    return None


# ---- tensor mutations ---------------------------------------------------------------------------

def _set_some(rng: random.Random, t: torch.Tensor, values: list) -> tuple[torch.Tensor, str]:
    if t.device.type == "meta":
        return t, "(meta)"
    t = t.clone(memory_format=torch.contiguous_format)
    flat = t.view(-1)
    if flat.numel() == 0:
        return t, "(empty)"
    picks = []
    for _ in range(rng.randint(1, min(4, flat.numel()))):
        i, v = rng.randrange(flat.numel()), rng.choice(values)
        flat[i] = v
        picks.append(f"[{i}]={v}")
    return t, ",".join(picks)


def stride0(rng, t):
    if t.dim() == 0 or t.numel() == 0:
        return t, "scalar"
    if rng.random() < 0.5:
        return t[:1].expand(t.shape), "batch expanded"
    return t.reshape(-1)[:1].reshape([1] * t.dim()).expand(t.shape), "one element expanded"


def overlap(rng, t):
    if t.dim() == 0 or t.numel() < 2:
        return t, "scalar"
    strides = [max(1, s // rng.choice([2, 3, 4])) if s > 1 else s for s in t.stride()]
    span = 1 + sum((n - 1) * s for n, s in zip(t.shape, strides))
    base = t.reshape(-1)[:span].clone() if span <= t.numel() else torch.cat([t.reshape(-1), t.reshape(-1)])[:span]
    return base.as_strided(t.shape, strides), f"strides {strides}"


def noncontig(rng, t):
    if t.dim() < 2:
        return torch.stack([t, t], -1)[..., 0], "every other element"
    if rng.random() < 0.5:
        return t.transpose(-1, -2).contiguous().transpose(-1, -2), "transposed"
    return torch.stack([t, t + 1], -1)[..., 0] if t.dtype != torch.bool else t.clone(), "stride 2"


def in_canary(rng, t, canaries: list):
    if t.dtype in (torch.bool, torch.complex64) or t.device.type == "meta":
        return t, "no canary for this dtype"
    before, after = rng.randint(1, 64), rng.randint(1, 64)
    buf = torch.full((before + t.numel() + after,), SENTINEL, dtype=t.dtype, device=t.device)
    view = buf[before:before + t.numel()].view(t.shape)
    view.copy_(t)
    canaries.append((buf, before, t.numel(), buf.clone()))
    return view, f"inside a sentinel buffer (+{before}, +{after})"


def dtype_change(rng, t):
    dtype = rng.choice([torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.int64, torch.bool,
                        torch.complex64, torch.uint8])
    try:
        return t.to(dtype), str(dtype)
    except Exception:
        return t, "unchanged"


def shape_change(rng, t, gen):
    r = rng.random()
    if r < 0.3 or t.dim() == 0:
        return t.unsqueeze(0), "unsqueezed"
    if r < 0.5:
        return t.reshape(-1), "flattened"
    dim = rng.randrange(t.dim())
    n = rng.choice([1, 2, 3, 5, 9, 33])
    shape = list(t.shape)
    shape[dim] = n
    return torch.zeros(shape, dtype=t.dtype, device=t.device).copy_(
        torch.rand(shape, generator=gen).to(t.dtype) if t.is_floating_point() else torch.zeros(shape, dtype=t.dtype)), \
        f"dim {dim} -> {n}"


# ---- the per-op mutation table ------------------------------------------------------------------

def _ids_out_of_range(rng, case: Case, name: str):
    """ids past the end / negative / huge in `name`; the oracle: those rows are zeros (valid_rows)."""
    args = case.arguments
    ids = args[name].clone(memory_format=torch.contiguous_format)
    prefix = args.get("num_prefix_tokens", 0)
    if case.op == "gather_patches":
        p = args["patch_size"]
        lo, hi = prefix, prefix + (args["imgs"].shape[2] // p) * (args["imgs"].shape[3] // p)
    else:
        lo, hi = 0, ids.shape[1]
    bad = [hi, hi + 1, lo - 1, -1, -hi - 1, 10**6, -100000, 2**31 - 1, 2**31, -2**31, 2**32, 2**62, 2**63 - 1,
           -2**63]
    flat = ids.view(-1)
    picks = []
    for _ in range(rng.randint(1, max(1, min(3, flat.numel())))):
        if not flat.numel():
            break
        i, v = rng.randrange(flat.numel()), rng.choice(bad)
        flat[i] = v
        picks.append(f"[{i}]={v}")
    args[name] = ids
    return f"{name} {','.join(picks) or '(empty)'} outside [{lo}, {hi})"


def _ids_duplicate(rng, case: Case, name: str):
    args = case.arguments
    ids = args[name].clone(memory_format=torch.contiguous_format)
    if ids.numel() < 2:
        return "too few ids"
    flat = ids.view(-1)
    i, j = rng.sample(range(flat.numel()), 2)
    flat[i] = flat[j]
    args[name] = ids
    return f"{name}[{i}] = {name}[{j}] = {int(flat[j])}"


def _zero_batch(rng, case: Case):
    args = case.arguments
    for k, v in args.items():
        if isinstance(v, torch.Tensor) and v.dim() >= 1 and k != "mask_token" and v.device.type != "meta":
            if k == "high_pass" or v.shape[0] == _batch_of(args):
                args[k] = v[:0]
    if isinstance(args.get("batch"), int):
        args["batch"] = 0
    return "batch 0"


def _batch_of(args) -> int | None:
    for v in args.values():
        if isinstance(v, torch.Tensor) and v.dim() >= 2:
            return v.shape[0]
    return None


def _empty_dim(rng, case: Case, name: str):
    t = case.arguments[name]
    if t.dim() == 0:
        return "scalar"
    dim = rng.randrange(t.dim())
    case.arguments[name] = t.narrow(dim, 0, 0)
    return f"{name} dim {dim} emptied"


def _argument_groups(args: dict) -> tuple[list[str], ...]:
    """The names of the call's arguments by kind: tensors, floating-point tensors, ints, floats, sequences,
    and the ints that are patch or window sizes."""
    kinds = {k: _kind(k, v) for k, v in args.items()}
    tensors = [k for k, kd in kinds.items() if kd == "tensor" and isinstance(args[k], torch.Tensor)]
    floats_t = [k for k in tensors if args[k].is_floating_point()]
    ints = [k for k, kd in kinds.items() if kd == "int"]
    floats = [k for k, kd in kinds.items() if kd == "float"]
    seqs = [k for k, kd in kinds.items() if kd == "seq"]
    patches = [k for k in ints if k in PATCH_NAMES]
    return tensors, floats_t, ints, floats, seqs, patches


def menu(op: str, args: dict) -> list[str]:
    """The categories of mutation that apply to a call of `op` with `args`."""
    tensors, floats_t, ints, floats, seqs, patches = _argument_groups(args)
    table = {
        "ids_out_of_range": op in ID_ARGS, "ids_duplicate": op in ID_ARGS,
        "nan_inf": bool(floats_t), "extreme_values": bool(floats_t), "zero_size": bool(tensors or "batch" in args),
        "count_limits": bool(ints), "float_limits": bool(floats), "huge_patch": bool(patches),
        "stride0": bool(tensors), "overlap": bool(tensors), "noncontig": bool(tensors), "canary": bool(tensors),
        "dtype": bool(tensors), "shape": bool(tensors), "seq_values": bool(seqs), "meta": bool(tensors),
    }
    return [c for c, ok in table.items() if ok]


@functools.lru_cache(maxsize=None)
def _base_menu(op: str) -> tuple[str, ...]:
    return tuple(menu(op, base_arguments(op, torch.device("cpu"))))


def category_of(op: str, index: int, seed: int = 0) -> str:
    """The category of case `index` without building it (what make_case draws first)."""
    rng = random.Random(f"{op}/{index}/{seed}")
    rng.getrandbits(31)
    if index < 16 and op in ID_ARGS:  # the table first: every Triton subset has it
        return "ids_out_of_range"
    return rng.choice(_base_menu(op))


def mutate(rng: random.Random, case: Case, category: str | None = None) -> str:
    """Applies one mutation (of `category`, else a random one the op has) to case.arguments; returns its
    category and sets the label."""
    args = case.arguments
    tensors, floats_t, ints, floats, seqs, patches = _argument_groups(args)
    if category is None:
        category = rng.choice(menu(case.op, args))
    if category == "ids_out_of_range":
        label = _ids_out_of_range(rng, case, ID_ARGS[case.op])
    elif category == "ids_duplicate":
        label = _ids_duplicate(rng, case, ID_ARGS[case.op])
    elif category in ("nan_inf", "extreme_values"):
        name = rng.choice(floats_t)
        values = [math.nan, math.inf, -math.inf] if category == "nan_inf" else [1e38, -1e38, 1e-40, -0.0, 3e-45]
        args[name], where = _set_some(rng, args[name], values)
        label = f"{name} {where}"
    elif category == "zero_size":
        label = _zero_batch(rng, case) if rng.random() < 0.6 or not tensors else _empty_dim(rng, case,
                                                                                           rng.choice(tensors))
    elif category == "count_limits":
        name = rng.choice(ints)
        args[name] = rng.choice(LIMIT_INTS + HUGE_INTS[:3])
        label = f"{name}={args[name]}"
    elif category == "float_limits":
        name = rng.choice(floats)
        args[name] = rng.choice(BAD_FLOATS)
        label = f"{name}={args[name]}"
    elif category == "huge_patch":
        name = rng.choice(patches)
        args[name] = rng.choice(HUGE_INTS + [1 << 20, 4096])
        label = f"{name}={args[name]}"
    elif category == "seq_values":
        name = rng.choice(seqs)
        cur = list(args[name]) if args[name] is not None else [0.5, 0.5, 0.5]
        r = rng.random()
        if r < 0.3:
            cur = cur[:-1] if len(cur) > 1 else cur * 2
        elif cur:
            cur[rng.randrange(len(cur))] = rng.choice(BAD_FLOATS + [2**31, -1, 0])
        args[name] = tuple(cur)
        label = f"{name}={args[name]}"
    else:
        name = rng.choice(tensors)
        t = args[name]
        if category == "stride0":
            args[name], how = stride0(rng, t)
        elif category == "overlap":
            args[name], how = overlap(rng, t)
        elif category == "noncontig":
            args[name], how = noncontig(rng, t)
        elif category == "canary":
            for k in tensors:  # every tensor: a read past any of them shows
                args[k], _ = in_canary(rng, args[k], case.canaries)
            how = "every tensor"
        elif category == "dtype":
            args[name], how = dtype_change(rng, t)
        elif category == "shape":
            args[name], how = shape_change(rng, t, torch.Generator().manual_seed(rng.getrandbits(31)))
        elif category == "meta":
            args[name], how = t.to("meta"), "meta"
        else:
            raise ValueError(category)
        label = f"{name} {how}" if category != "canary" else "every tensor in a sentinel buffer"
    case.label = f"{case.label}; {label}" if case.label else label
    return category


GRAD_OPS = {"gather_patches", "unshuffle_tokens", "patchify", "unpatchify", "masked_mse_loss", "masked_l1_loss",
            "norm_pix_mse_loss", "frequency_loss", "circular_filter", "lowfreq_target"}


def make_case(op: str, index: int, seed: int = 0, device: str = "cpu") -> Case:
    rng = random.Random(f"{op}/{index}/{seed}")
    rng.getrandbits(31)  # (was the torch seed: kept so that the cases stay those of known.py)
    case = Case(op, index, "", "", base_arguments(op, torch.device(device)))
    first = category_of(op, index, seed)
    if not (index < 16 and op in ID_ARGS):
        rng.choice(_base_menu(op))  # the draw category_of made
    case.category = mutate(rng, case, first)
    if case.category == "ids_out_of_range" and rng.random() < 0.5:
        second = rng.choice(["canary", "nan_inf", "stride0", "noncontig"])
    else:
        second = "any" if rng.random() < 0.3 else None
    if second is not None:
        saved = (dict(case.arguments), case.label, list(case.canaries))
        try:
            mutate(rng, case, None if second == "any" else second)
        except Exception:  # noqa: BLE001  (not applicable to what the first mutation made: dropped)
            case.arguments, case.label, case.canaries = saved
    case.debug = case.category.startswith("ids") and rng.random() < 0.2
    case.grad = op in GRAD_OPS and rng.random() < 0.4
    return case


def id_bounds(op: str, args: dict) -> tuple[torch.Tensor, int, int] | None:
    """(ids, lo, hi) of an ids op's call whose ids are an int64 (B, n) tensor with data; else None."""
    if op not in ID_ARGS:
        return None
    ids = args.get(ID_ARGS[op])
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.int64 or ids.dim() != 2 or ids.device.type == "meta":
        return None
    prefix = args.get("num_prefix_tokens", 0)
    if not isinstance(prefix, int) or isinstance(prefix, bool) or prefix < 0:
        return None
    if op == "gather_patches":
        p, imgs = args.get("patch_size"), args.get("imgs")
        if not isinstance(p, int) or p <= 0 or not isinstance(imgs, torch.Tensor) or imgs.dim() != 4:
            return None
        return ids, prefix, prefix + (imgs.shape[2] // p) * (imgs.shape[3] // p)
    x = args.get("x")
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or prefix > x.shape[1]:
        return None  # refused by the front door: no rows to speak of
    return ids, 0, ids.shape[1]


def valid_rows(op: str, args: dict) -> torch.Tensor | None:
    """(B, output rows) bool: False where the row's id is out of range (its defined result: zeros)."""
    bounds = id_bounds(op, args)
    if bounds is None:
        return None
    ids, lo, hi = bounds
    valid = (ids >= lo) & (ids < hi)
    if op == "unshuffle_tokens":  # P prefix rows (always valid), then L
        valid = torch.cat([torch.ones(ids.shape[0], args["num_prefix_tokens"], dtype=torch.bool, device=ids.device),
                           valid], 1)
    return valid


def repaired(op: str, args: dict) -> dict:
    """The call with every out-of-range id replaced by a valid one (lo): the reference defines its result,
    which the oracle then zeros where valid_rows is False."""
    ids, lo, hi = id_bounds(op, args)
    fixed = dict(args)
    fixed[ID_ARGS[op]] = torch.where((ids >= lo) & (ids < hi), ids, torch.full_like(ids, lo))
    return fixed


def ops() -> list[str]:
    """Every public op, or those named in MIMKERNELS_FUZZ_OPS (comma separated: a quick local run)."""
    only = [o for o in os.environ.get("MIMKERNELS_FUZZ_OPS", "").split(",") if o]
    return [op for op in public_ops() if not only or op in only]
