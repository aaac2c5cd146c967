"""Pre-train a small ViT with a masked-image-modeling method, then linear-probe its frozen encoder.

    python -m mimkernels.train --method mae                         # embedded images, CPU, a few minutes
    python -m mimkernels.train --method maskfeat --ops torch        # the same with the eager reference ops
    python -m mimkernels.train --method simmim --data ~/pics --img-size 64 --device cuda --epochs 100
    torchrun --nproc-per-node 2 -m mimkernels.train --method mfm    # DDP: gloo on CPU, nccl on GPU

A run writes to --out (default: a fresh folder runs/<method>-<ops>-<time>): config.json,
checkpoint.pt (every epoch; --resume continues from it), pictures.png (input | masked or filtered
| target | prediction), loss.png and metrics.json (method, ops, final_loss, probe_accuracy,
random_init_probe_accuracy, wall time, throughput).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mimkernels import rng
from mimkernels.train import data, probe, viz
from mimkernels.train.methods import METHODS, ModelConfig, availability, build
from mimkernels.train.ops import OPS_CHOICES, Ops

# Keys of config.json that a checkpoint must share with the run that resumes it.
ARCHITECTURE_KEYS = ("method", "img_size", "patch_size", "dim", "depth", "heads", "decoder_dim", "decoder_depth")


def _methods_help() -> str:
    lines = []
    for name, lacking in availability().items():
        state = "available" if not lacking else f"unavailable: needs {', '.join(lacking)} (family not in this mimkernels yet)"
        lines.append(f"  {name:9s} {state}")
    return "methods:\n" + "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mimkernels.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_methods_help())
    p.add_argument("--method", default="mae", help=f"one of {', '.join(METHODS)} (default mae)")
    p.add_argument("--ops", default="mimkernels", choices=OPS_CHOICES,
                   help="MIM ops: mimkernels (fastest kernel per op, backend='auto') or torch (the eager reference)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="image folder PATH/<class>/<image> (default: the embedded procedural shapes)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64, help="images per process and step")
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--patch-size", type=int, default=4)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (default: a fresh runs/<method>-<ops>-<time>)")
    p.add_argument("--resume", default=None, metavar="CKPT", help="checkpoint.pt (or its run folder) to continue")
    p.add_argument("--lr", type=float, default=None,
                   help="AdamW peak learning rate per 256 images (MAE's blr; default: the method's base_lr, "
                        + ", ".join(f"{name} {cls.base_lr:g}" for name, cls in METHODS.items()) + ")")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--train-size", type=int, default=2048, help="embedded training images")
    p.add_argument("--test-size", type=int, default=1024, help="embedded test images (linear probe)")
    model = ModelConfig()
    for f in dataclasses.fields(ModelConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=int, default=getattr(model, f.name),
                       help=f"ViT {f.name.replace('_', ' ')} (default {getattr(model, f.name)})")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on GPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


class ConfigError(ValueError):
    """A bad argument, data folder or method choice: reported as a usage error, without a traceback."""


# ---- distributed ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist(device_arg: str | None) -> Dist:
    """One process, or a torchrun process group (RANK/WORLD_SIZE/LOCAL_RANK set): gloo on CPU, nccl on GPU."""
    device = torch.device(device_arg or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device_arg}: torch sees no CUDA device")
    if "RANK" not in os.environ:
        return Dist(0, 1, device)
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Dist(rank, world, device)


def mean_over_ranks(value: torch.Tensor, dist: Dist) -> torch.Tensor:
    if dist.world > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
        value /= dist.world
    return value


# ---- helpers -------------------------------------------------------------------------------------

def learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warmup to `peak`, then half-cosine to 0 (MAE's schedule, per step)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def optimizer(method: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, betas (0.9, 0.95), no weight decay on biases, norms and tokens (MAE)."""
    decay = [p for n, p in method.named_parameters() if p.ndim >= 2 and "token" not in n]
    no_decay = [p for n, p in method.named_parameters() if p.ndim < 2 or "token" in n]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))


def load_data(args) -> tuple[data.ImageSet, data.ImageSet]:
    if args.data is None:
        return data.embedded(args.img_size, args.seed, args.train_size, args.test_size)
    return data.image_folder(args.data, args.img_size, args.seed)


def run_folder(args) -> Path:
    if args.out is not None:
        return Path(args.out)
    if args.resume is not None:
        return checkpoint_path(args.resume).parent
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{args.method}-{args.ops}-{stamp}"
    suffix = 1
    while out.exists():
        out, suffix = Path("runs") / f"{args.method}-{args.ops}-{stamp}-{suffix}", suffix + 1
    return out


def checkpoint_path(resume: str) -> Path:
    path = Path(resume)
    path = path / "checkpoint.pt" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"--resume {resume}: no checkpoint there")
    return path


def validate(args) -> None:
    """Clear errors for the arguments, before any data is loaded."""
    if args.method not in METHODS:
        raise ConfigError(f"unknown method {args.method!r}; choose one of {', '.join(METHODS)}")
    for name in ("epochs", "batch_size", "img_size", "patch_size", "train_size", "test_size"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.img_size % args.patch_size:
        raise ConfigError(f"--img-size {args.img_size} is not divisible by --patch-size {args.patch_size}")
    if args.dim % 4 or args.dim % args.heads or args.decoder_dim % 4 or args.decoder_dim % args.heads:
        raise ConfigError("--dim and --decoder-dim must be multiples of 4 and of --heads")


# ---- the run -------------------------------------------------------------------------------------

def run(args) -> dict:
    """Pre-train, probe, draw; returns the metrics (also written to <out>/metrics.json on rank 0)."""
    validate(args)
    dist = setup_dist(args.device)
    try:
        return _run(args, dist)
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()


def _run(args, dist: Dist) -> dict:
    resume = None if args.resume is None else checkpoint_path(args.resume)
    out = run_folder(args)
    try:
        train, test = load_data(args)
    except ValueError as err:                     # a bad data folder
        raise ConfigError(str(err)) from err
    global_batch = args.batch_size * dist.world
    steps_per_epoch = len(train) // global_batch
    if steps_per_epoch == 0:
        raise ConfigError(f"{len(train)} training images do not fill one global batch of {global_batch}")

    torch.manual_seed(args.seed)                  # the same initial weights on every rank
    model_config = ModelConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ModelConfig)})
    try:
        method = build(args.method, Ops(args.ops), args.img_size, args.patch_size, model_config).to(dist.device)
    except RuntimeError as err:                   # a method whose op families are not in this mimkernels
        raise ConfigError(str(err)) from err
    if args.lr is None:
        args.lr = type(method).base_lr
    config = {k: v for k, v in vars(args).items() if k not in ("resume", "no_progress")}
    config.update(world_size=dist.world, device=str(dist.device), settings=method.settings(),
                  train_images=len(train), test_images=len(test), classes=list(train.classes))
    total_steps = steps_per_epoch * args.epochs
    peak_lr = args.lr * global_batch / 256
    opt = optimizer(method, peak_lr, args.weight_decay)
    amp = dist.device.type == "cuda" and not args.no_amp
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    start_epoch, losses, wall = 0, [], 0.0
    if args.resume is not None:
        state = torch.load(resume, map_location=dist.device, weights_only=False)
        changed = [k for k in ARCHITECTURE_KEYS if state["config"][k] != config[k]]
        if changed:
            raise ConfigError(f"--resume: the checkpoint was trained with other {', '.join(changed)}")
        method.load_state_dict(state["method"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, losses, wall = state["epoch"], state["losses"], state["wall_time_s"]
        random_init_accuracy = state["random_init_probe_accuracy"]
    elif dist.main:
        random_init_accuracy = probe.probe(method, train, test, dist.device)

    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config, indent=2))
        params = sum(p.numel() for p in method.parameters())
        print(f"{args.method} ({args.ops} ops) on {len(train)} images {args.img_size}px, patch {args.patch_size}, "
              f"{params / 1e6:.2f}M parameters, {dist.world} process(es) on {dist.device}{', bf16 autocast' if amp else ''}")
        print("  " + ", ".join(f"{k} {v}" for k, v in method.settings().items()))
        print(f"  {args.epochs} epochs x {steps_per_epoch} steps of {global_batch} images, peak lr {peak_lr:.2e}; "
              f"run folder {out}")

    model = method
    if dist.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
    for epoch in range(start_epoch, args.epochs):
        # same permutation on every rank; each rank takes its slice of each global batch
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(rng.derive_seed(args.seed, 1, epoch) >> 1))
        augment_rng = torch.Generator().manual_seed(rng.derive_seed(args.seed, 2, epoch, dist.rank) >> 1)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", leave=True,
                   disable=args.no_progress or not dist.main, dynamic_ncols=True)
        tic = time.perf_counter()
        for i in bar:
            step = epoch * steps_per_epoch + i
            start = i * global_batch + dist.rank * args.batch_size
            imgs = method.augment(train.floats(order[start:start + args.batch_size]), augment_rng).to(dist.device)
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, total_steps, int(args.warmup_epochs * steps_per_epoch), peak_lr)
            # one Philox key per step for all ranks; rank r's samples are numbered from r·B (distinct masks)
            with autocast():
                result = model(imgs, rng.derive_seed(args.seed, 3, step), dist.rank * args.batch_size)
            opt.zero_grad(set_to_none=True)
            result.loss.backward()
            opt.step()
            losses.append(mean_over_ranks(result.loss.detach().float(), dist).item())
            seconds = time.perf_counter() - tic
            bar.set_postfix(loss=f"{losses[-1]:.4f}", img_s=f"{(i + 1) * global_batch / seconds:.0f}")
        wall += time.perf_counter() - tic
        if dist.main:
            torch.save({"method": method.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                        "losses": losses, "config": config, "wall_time_s": wall,
                        "random_init_probe_accuracy": random_init_accuracy}, out / "checkpoint.pt")

    if not dist.main:
        return {}
    accuracy = probe.probe(method, train, test, dist.device)
    last_epoch = losses[-steps_per_epoch:]
    metrics = {
        "method": args.method, "ops": args.ops,
        "final_loss": sum(last_epoch) / len(last_epoch) if last_epoch else float("nan"),
        "probe_accuracy": accuracy, "random_init_probe_accuracy": random_init_accuracy,
        "epochs": args.epochs, "steps": len(losses), "world_size": dist.world, "device": str(dist.device),
        "train_wall_time_s": round(wall, 2),
        "train_images_per_s": round(len(losses) * global_batch / wall, 1) if wall else None,
        "losses": losses,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    # pictures of the first test images, un-augmented, with a fixed key
    method.eval()
    with torch.no_grad(), autocast():
        imgs = test.floats(slice(0, 6)).to(dist.device)
        result = method(imgs, rng.derive_seed(args.seed, 4), 0)
    viz.save_grid(method, imgs, result.tensors, out / "pictures.png")
    viz.save_loss_curve(losses, steps_per_epoch, out / "loss.png", f"{args.method} ({args.ops} ops)")
    print(f"final loss {metrics['final_loss']:.4f}; linear probe {accuracy:.3f} "
          f"(random init {random_init_accuracy:.3f}); {wall:.0f} s training; {out}")
    return metrics


def main(argv: list[str] | None = None) -> dict:
    p = parser()
    args = p.parse_args(argv)
    try:
        return run(args)
    except ConfigError as err:
        p.error(str(err))


if __name__ == "__main__":
    main(sys.argv[1:])
