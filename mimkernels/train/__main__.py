"""Pre-train a small ViT with a masked-image-modeling method, then linear-probe its frozen encoder.

    python -m mimkernels.train --method mae                         # embedded images, CPU, about a minute
    python -m mimkernels.train --method maskfeat --ops torch        # the same with the eager reference ops
    python -m mimkernels.train --method simmim --data ~/pics --img-size 64 --device cuda --epochs 100
    torchrun --nproc-per-node 2 -m mimkernels.train --method mfm    # DDP: gloo on CPU, nccl on GPU

A run writes to --out (default: a fresh folder runs/<method>-<ops>-<time>): config.json,
checkpoint.pt (every epoch; --resume continues from it), pictures.png (what the encoder saw, the
target and the prediction in the loss's space, the prediction put back into the image), loss.png and
metrics.json (method, ops, final_loss beside final_trivial_loss -- a predictor that learned nothing,
on the same batches --, the prediction's spread across patches, probe_accuracy,
random_init_probe_accuracy, wall time, throughput).

The run, top-down (`run`, then `_run`): read the checkpoint to resume, check the arguments, start
the processes, set the CPU threads, load the data, plan the steps, build the method and its
optimizer, restore the checkpoint or probe the random-init encoder, write config.json, train (a
checkpoint per epoch), probe the trained encoder, write metrics.json and the pictures.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import torch

from mimkernels.train import data, probe, seeds
from mimkernels.train.methods import METHODS, Method, ModelConfig, build
from mimkernels.train.ops import OPS_CHOICES, Ops

# Keys of config.json that a checkpoint must share with the run that resumes it.
ARCHITECTURE_KEYS = ("method", "img_size", "patch_size", "dim", "depth", "heads", "decoder_dim", "decoder_depth")


class ConfigError(ValueError):
    """A bad argument, data folder or method choice: reported as a usage error, without a traceback."""


# ---- the command line ----------------------------------------------------------------------------

def _methods_help() -> str:
    """Each method: its docstring's first sentence, and the MIM ops it calls."""
    lines = []
    for name, cls in METHODS.items():
        summary = re.split(r"\.(?= [A-Z]|$)", " ".join(cls.__doc__.split()))[0]
        lines += textwrap.wrap(f"{summary}. Ops: {', '.join(cls.needs)}.", 100, initial_indent=f"  {name:9s} ",
                               subsequent_indent=" " * 12)
    return "methods (mimkernels/train/methods.py):\n" + "\n".join(lines)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows each option's default, except where there is none to show (the help says what happens)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mimkernels.train", description=__doc__.split("\n\n")[0],
                                formatter_class=_HelpFormatter, epilog=_methods_help())
    p.add_argument("--method", default=None,
                   help=f"the pre-training method, one of {', '.join(METHODS)} (below); default: mae, or with "
                        "--resume the checkpoint's")
    p.add_argument("--ops", default="mimkernels", choices=OPS_CHOICES,
                   help="MIM ops: mimkernels (fastest kernel per op, backend='auto') or torch (the eager reference)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="image folder PATH/<class>/<image>, a fifth of each class kept for the probe's test "
                        "(default: the embedded procedural shapes)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training images")
    p.add_argument("--batch-size", type=int, default=64, help="images per process and step")
    p.add_argument("--img-size", type=int, default=32, help="images are resized to IMG_SIZE x IMG_SIZE pixels")
    p.add_argument("--patch-size", type=int, default=4, help="ViT patch side in pixels (divides --img-size)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of this process (torch.set_num_threads). Default: 1 on a CPU device "
                        "(the ViT's matrices are too small to share: a second thread on a busy 2-core machine made "
                        "an epoch 10x slower) unless OMP_NUM_THREADS is set; torch's default on a GPU")
    p.add_argument("--seed", type=int, default=0,
                   help="draws the embedded images, the initial weights, the augmentations and the masks "
                        "(train/seeds.py)")
    p.add_argument("--out", default=None, help="run folder (default: a fresh runs/<method>-<ops>-<time>)")
    p.add_argument("--resume", default=None, metavar="CKPT",
                   help="checkpoint.pt (or its run folder) to continue, into its folder; raise --epochs to train "
                        "longer (default: a new run)")
    p.add_argument("--lr", type=float, default=None,
                   help="AdamW peak learning rate per 256 images (MAE's blr; default: the method's base_lr, "
                        + ", ".join(f"{name} {cls.base_lr:g}" for name, cls in METHODS.items()) + ")")
    p.add_argument("--weight-decay", type=float, default=0.05,
                   help="AdamW weight decay (none on biases, norms, tokens)")
    p.add_argument("--warmup-epochs", type=float, default=1.0,
                   help="linear learning-rate warm-up before the half-cosine decay; capped at half the run")
    p.add_argument("--train-size", type=int, default=2048, help="embedded training images")
    p.add_argument("--test-size", type=int, default=1024, help="embedded test images (linear probe)")
    model = ModelConfig()
    for f in dataclasses.fields(ModelConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=int, default=getattr(model, f.name),
                       help=f"ViT {f.name.replace('_', ' ')}")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on GPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> dict:
    require_train_extra()
    p = parser()
    args = p.parse_args(argv)
    try:
        return run(args)
    except ConfigError as err:
        p.error(str(err))


# module -> package of the [train] extra (pyproject.toml), imported where they are used
TRAIN_EXTRA = {"tqdm": "tqdm", "matplotlib": "matplotlib", "PIL": "pillow"}


def require_train_extra() -> None:
    """Exit with the install command when a package of the [train] extra is missing."""
    missing = [package for module, package in TRAIN_EXTRA.items() if importlib.util.find_spec(module) is None]
    if missing:
        sys.exit(f"python -m mimkernels.train needs the [train] extra; missing here: {', '.join(missing)}. "
                 f"Install it from the repository with\n    pip install -e \".[train]\"\n"
                 f"(or: pip install {' '.join(missing)})")


# ---- the run, top-down ---------------------------------------------------------------------------

def run(args) -> dict:
    """Pre-train, probe, draw; returns the metrics (also written to <out>/metrics.json on rank 0)."""
    checkpoint = read_checkpoint(args.resume)
    validate(args, checkpoint)
    dist = setup_dist(args.device)
    try:
        return _run(args, checkpoint, dist)
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()


def _run(args, checkpoint: dict | None, dist: Dist) -> dict:
    set_threads(args, dist)
    train, test = load_data(args)
    if dist.main:
        warn_if_few_test_images(args, test)
    schedule = plan(args, len(train), dist)
    method = build_method(args, dist)
    opt = optimizer(method, schedule.peak_lr, args.weight_decay)
    config = run_config(args, dist, method, schedule, train, test)
    if checkpoint is not None:
        progress = restore(checkpoint, method, opt)
    else:
        progress = Progress(random_init_probe_accuracy=probe.probe(method, train, test, dist.device)
                            if dist.main else None)
    out = run_folder(args)
    if dist.main:
        write_config(out, config)
        announce(args, dist, method, schedule, train, progress, out)

    train_epochs(args, dist, method, opt, schedule, train, progress, config, out)

    if not dist.main:
        return {}
    metrics = evaluate(args, dist, method, schedule, train, test, progress)
    write_outputs(args, dist, method, schedule, test, metrics, out)
    return metrics


# ---- steps of the run ----------------------------------------------------------------------------

def read_checkpoint(resume: str | None) -> dict | None:
    """The checkpoint to continue (on the CPU; loading moves it to the device), or None for a new run."""
    if resume is None:
        return None
    return torch.load(checkpoint_path(resume), map_location="cpu", weights_only=False)


def checkpoint_path(resume: str) -> Path:
    path = Path(resume)
    path = path / "checkpoint.pt" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"--resume {resume}: no checkpoint there")
    return path


def validate(args, checkpoint: dict | None) -> None:
    """Clear errors for the arguments, before any data is loaded; fills in --method (the checkpoint's,
    else mae) and --lr (the method's base_lr)."""
    if args.method is None:
        args.method = checkpoint["config"]["method"] if checkpoint is not None else "mae"
    if args.method not in METHODS:
        raise ConfigError(f"unknown method {args.method!r}; choose one of {', '.join(METHODS)}")
    for name in ("epochs", "batch_size", "img_size", "patch_size", "train_size", "test_size", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.img_size % args.patch_size:
        raise ConfigError(f"--img-size {args.img_size} is not divisible by --patch-size {args.patch_size}")
    if args.dim % 4 or args.dim % args.heads or args.decoder_dim % 4 or args.decoder_dim % args.heads:
        raise ConfigError("--dim and --decoder-dim must be multiples of 4 and of --heads")
    if checkpoint is not None:
        trained = checkpoint["config"]
        changed = [k for k in ARCHITECTURE_KEYS if trained[k] != getattr(args, k)]
        if changed:
            was = ", ".join(f"--{k.replace('_', '-')} {trained[k]}" for k in changed)
            asked = ", ".join(f"--{k.replace('_', '-')} {getattr(args, k)}" for k in changed)
            raise ConfigError(f"--resume {args.resume}: the checkpoint was trained with {was}, this run asks for "
                              f"{asked}; pass the checkpoint's values (its config.json lists them; --method may be "
                              "left out)")
    if args.lr is None:
        args.lr = METHODS[args.method].base_lr


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


def set_threads(args, dist: Dist) -> None:
    """torch's intra-op threads for this process: --threads, else 1 on a CPU device unless OMP_NUM_THREADS says
    otherwise (a ViT of this size gains nothing from a second thread, and on a busy machine loses up to 10x),
    else torch's default. The choice goes into args.threads (config.json)."""
    if args.threads is None:
        keep = dist.device.type == "cuda" or "OMP_NUM_THREADS" in os.environ
        args.threads = torch.get_num_threads() if keep else 1
    torch.set_num_threads(args.threads)


def cores_available() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_data(args) -> tuple[data.ImageSet, data.ImageSet]:
    """(train, test): the embedded shapes, or the image folder --data split per class."""
    try:
        if args.data is None:
            return data.embedded(args.img_size, args.seed, args.train_size, args.test_size)
        return data.image_folder(args.data, args.img_size, args.seed)
    except ValueError as err:                     # a bad data folder
        raise ConfigError(str(err)) from err


MIN_TEST_IMAGES = 50


def warn_if_few_test_images(args, test: data.ImageSet) -> None:
    """A probe on a handful of test images says nothing: one image moves its accuracy by 1/n."""
    if len(test) >= MIN_TEST_IMAGES:
        return
    fix = ("put more images in each class folder (a fifth of each class is the test split)" if args.data is not None
           else f"raise --test-size to {MIN_TEST_IMAGES} or more")
    print(f"warning: the probe's test split has {len(test)} images (under {MIN_TEST_IMAGES}): one image moves its "
          f"accuracy by {1 / len(test):.3f}, so probe_accuracy and random_init_probe_accuracy are meaningless; "
          f"{fix}", file=sys.stderr)


@dataclasses.dataclass
class Schedule:
    """The steps of the run and its learning rate: linear warm-up to peak_lr, then half-cosine to 0 (MAE's)."""

    epochs: int
    steps_per_epoch: int
    global_batch: int          # images per step over all processes
    warmup_steps: int
    peak_lr: float
    warmup_note: str = ""      # why warmup_steps is below what --warmup-epochs asked for

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lr(self, step: int) -> float:
        return learning_rate(step, self.total_steps, self.warmup_steps, self.peak_lr)


MAX_WARMUP_FRACTION = 0.5   # of the run's steps: the rest decays


def plan(args, train_images: int, dist: Dist) -> Schedule:
    """Steps per epoch of one global batch (--batch-size x processes) and the learning rate schedule."""
    global_batch = args.batch_size * dist.world
    steps_per_epoch = train_images // global_batch
    if steps_per_epoch == 0:
        per_process = train_images // dist.world
        fix = (f"pass --batch-size {per_process} or less" if per_process
               else f"use at most {train_images} processes")
        raise ConfigError(f"{train_images} training images do not fill one global batch of {global_batch} "
                          f"(--batch-size {args.batch_size} x {dist.world} process(es)): {fix}")
    total_steps = args.epochs * steps_per_epoch
    warmup_steps, note = int(args.warmup_epochs * steps_per_epoch), ""
    cap = int(total_steps * MAX_WARMUP_FRACTION)
    if warmup_steps > cap:
        note = (f"--warmup-epochs {args.warmup_epochs:g} ({warmup_steps} steps) would leave no room for the decay "
                f"of a {total_steps}-step run: capped at {cap} steps, half the run")
        warmup_steps = cap
    return Schedule(args.epochs, steps_per_epoch, global_batch, warmup_steps, args.lr * global_batch / 256, note)


def learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warmup to `peak`, then half-cosine to 0 (MAE's schedule, per step)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def build_method(args, dist: Dist) -> Method:
    """The method with its ViT, the same initial weights on every rank (torch.manual_seed(--seed))."""
    torch.manual_seed(args.seed)
    model_config = ModelConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ModelConfig)})
    return build(args.method, Ops(args.ops), args.img_size, args.patch_size, model_config).to(dist.device)


def optimizer(method: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, betas (0.9, 0.95), no weight decay on biases, norms and tokens (MAE)."""
    decay = [p for n, p in method.named_parameters() if p.ndim >= 2 and "token" not in n]
    no_decay = [p for n, p in method.named_parameters() if p.ndim < 2 or "token" in n]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))


def run_config(args, dist: Dist, method: Method, schedule: Schedule, train: data.ImageSet,
               test: data.ImageSet) -> dict:
    """config.json: the arguments, the processes, the method's settings at this size, the steps, the data."""
    config = {k: v for k, v in vars(args).items() if k not in ("resume", "no_progress")}
    config.update(world_size=dist.world, device=str(dist.device), settings=method.settings(),
                  steps_per_epoch=schedule.steps_per_epoch, warmup_steps=schedule.warmup_steps,
                  train_images=len(train), test_images=len(test), classes=list(train.classes))
    return config


@dataclasses.dataclass
class Progress:
    """Where the run is: what a checkpoint carries besides the weights and the optimizer."""

    epoch: int = 0                          # epochs done
    losses: list[float] = dataclasses.field(default_factory=list)   # one per step, mean over ranks
    trivial_losses: list[float] = dataclasses.field(default_factory=list)   # the trivial predictor's, same batches
    spreads: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # last epoch, rank 0: Method.spread
    wall_time_s: float = 0.0                # training time so far
    random_init_probe_accuracy: float | None = None


def restore(checkpoint: dict, method: Method, opt: torch.optim.Optimizer) -> Progress:
    method.load_state_dict(checkpoint["method"])
    opt.load_state_dict(checkpoint["optimizer"])
    return Progress(checkpoint["epoch"], checkpoint["losses"], checkpoint.get("trivial_losses", []),
                    checkpoint.get("spreads", []), checkpoint["wall_time_s"], checkpoint["random_init_probe_accuracy"])


def save_checkpoint(path: Path, method: Method, opt: torch.optim.Optimizer, progress: Progress, config: dict) -> None:
    torch.save({"method": method.state_dict(), "optimizer": opt.state_dict(), "epoch": progress.epoch,
                "losses": progress.losses, "trivial_losses": progress.trivial_losses, "spreads": progress.spreads,
                "config": config, "wall_time_s": progress.wall_time_s,
                "random_init_probe_accuracy": progress.random_init_probe_accuracy}, path)


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


def write_config(out: Path, config: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2))


def announce(args, dist: Dist, method: Method, schedule: Schedule, train: data.ImageSet, progress: Progress,
             out: Path) -> None:
    params = sum(p.numel() for p in method.parameters())
    amp = ", bf16 autocast" if uses_amp(args, dist) else ""
    print(f"{args.method} ({args.ops} ops) on {len(train)} images {args.img_size}px, patch {args.patch_size}, "
          f"{params / 1e6:.2f}M parameters, {dist.world} process(es) on {dist.device}{amp}, "
          f"{args.threads} CPU thread(s) each (--threads; {cores_available()} cores available)")
    print("  " + ", ".join(f"{k} {v}" for k, v in method.settings().items()))
    print(f"  {schedule.epochs} epochs x {schedule.steps_per_epoch} steps of {schedule.global_batch} images, "
          f"peak lr {schedule.peak_lr:.2e} after {schedule.warmup_steps} warm-up steps; run folder {out}")
    if schedule.warmup_note:
        print(f"  {schedule.warmup_note}")
    if progress.epoch:
        print(f"  resuming after epoch {progress.epoch} ({len(progress.losses)} steps)")


def uses_amp(args, dist: Dist) -> bool:
    return dist.device.type == "cuda" and not args.no_amp


def autocast(args, dist: Dist):
    """bf16 autocast on a GPU (unless --no-amp), else nothing."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if uses_amp(args, dist) else contextlib.nullcontext()


def train_epochs(args, dist: Dist, method: Method, opt: torch.optim.Optimizer, schedule: Schedule,
                 train: data.ImageSet, progress: Progress, config: dict, out: Path) -> None:
    """From progress.epoch to the last epoch, a checkpoint after each (rank 0)."""
    model = method
    if dist.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
    for epoch in range(progress.epoch, schedule.epochs):
        tic = time.perf_counter()
        if epoch == schedule.epochs - 1:
            progress.spreads.clear()           # a resumed run's earlier last epoch is not this run's
        train_epoch(args, dist, model, method, opt, schedule, train, progress, epoch)
        progress.wall_time_s += time.perf_counter() - tic
        progress.epoch = epoch + 1
        if dist.main:
            save_checkpoint(out / "checkpoint.pt", method, opt, progress, config)


def train_epoch(args, dist: Dist, model: torch.nn.Module, method: Method, opt: torch.optim.Optimizer,
                schedule: Schedule, train: data.ImageSet, progress: Progress, epoch: int) -> None:
    """One pass over the training images: every rank takes its slice of each global batch of one permutation."""
    from tqdm import tqdm

    order = torch.randperm(len(train), generator=seeds.generator(args.seed, seeds.DATA_ORDER, epoch))
    augment_rng = seeds.generator(args.seed, seeds.AUGMENT, epoch, dist.rank)
    bar = tqdm(range(schedule.steps_per_epoch), desc=f"epoch {epoch + 1}/{schedule.epochs}", leave=True,
               disable=args.no_progress or not dist.main, dynamic_ncols=True)
    tic = time.perf_counter()
    for i in bar:
        step = epoch * schedule.steps_per_epoch + i
        start = i * schedule.global_batch + dist.rank * args.batch_size
        imgs = method.augment(train.floats(order[start:start + args.batch_size]), augment_rng).to(dist.device)
        for group in opt.param_groups:
            group["lr"] = schedule.lr(step)
        # one Philox key per step for all ranks; rank r's samples are numbered from r·B (distinct masks)
        with autocast(args, dist):
            result = model(imgs, seeds.key(args.seed, seeds.STEP, step), dist.rank * args.batch_size)
        opt.zero_grad(set_to_none=True)
        result.loss.backward()
        opt.step()
        progress.losses.append(mean_over_ranks(result.loss.detach().float(), dist).item())
        progress.trivial_losses.append(mean_over_ranks(method.trivial_loss(result).float(), dist).item())
        if epoch == schedule.epochs - 1 and dist.main:
            progress.spreads.append(method.spread(result))
        seconds = time.perf_counter() - tic
        bar.set_postfix(loss=f"{progress.losses[-1]:.4f}", img_s=f"{(i + 1) * schedule.global_batch / seconds:.0f}")


def mean_over_ranks(value: torch.Tensor, dist: Dist) -> torch.Tensor:
    if dist.world > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
        value /= dist.world
    return value


def evaluate(args, dist: Dist, method: Method, schedule: Schedule, train: data.ImageSet, test: data.ImageSet,
             progress: Progress) -> dict:
    """metrics.json: the last epoch's mean loss beside the trivial predictor's on the same batches, the spread of
    the prediction across patches, the probe of the trained and of the random-init encoder, speed."""
    wall, losses = progress.wall_time_s, progress.losses
    final, trivial = last_epoch_mean(losses, schedule), last_epoch_mean(progress.trivial_losses, schedule)
    spreads = torch.tensor(progress.spreads or [(math.nan, math.nan)]).mean(0).tolist()
    return {
        "method": args.method, "ops": args.ops,
        "final_loss": final,
        "trivial_predictor": method.trivial, "final_trivial_loss": trivial,
        "loss_below_trivial": 1 - final / trivial if trivial else float("nan"),
        "prediction_spread": spreads[0], "target_spread": spreads[1],
        "probe_accuracy": probe.probe(method, train, test, dist.device),
        "random_init_probe_accuracy": progress.random_init_probe_accuracy,
        "epochs": schedule.epochs, "steps": len(losses), "world_size": dist.world, "device": str(dist.device),
        "threads": args.threads,
        "train_wall_time_s": round(wall, 2),
        "train_images_per_s": round(len(losses) * schedule.global_batch / wall, 1) if wall else None,
        "losses": losses, "trivial_losses": progress.trivial_losses,
    }


def figure_title(metrics: dict) -> str:
    """pictures.png's title: the method, its epochs, the probe against the random-init encoder's, the loss against
    the trivial predictor's."""
    return (f"{metrics['method']} ({metrics['ops']} ops), {metrics['epochs']} epochs: linear probe "
            f"{metrics['probe_accuracy']:.3f} (random-init encoder {metrics['random_init_probe_accuracy']:.3f})\n"
            f"final masked loss {metrics['final_loss']:.4f} against {metrics['final_trivial_loss']:.4f} for "
            f"{metrics['trivial_predictor']}")


def last_epoch_mean(values: list[float], schedule: Schedule) -> float:
    last = values[-schedule.steps_per_epoch:]
    return sum(last) / len(last) if last else float("nan")


def write_outputs(args, dist: Dist, method: Method, schedule: Schedule, test: data.ImageSet, metrics: dict,
                  out: Path) -> None:
    """metrics.json, pictures.png (the first test images, un-augmented, with a fixed key), loss.png."""
    from mimkernels.train import viz

    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    method.eval()
    with torch.no_grad(), autocast(args, dist):
        imgs = test.floats(slice(0, 6)).to(dist.device)
        result = method(imgs, seeds.key(args.seed, seeds.PICTURES), 0)
    viz.save_grid(method, imgs, result.tensors, out / "pictures.png", figure_title(metrics))
    viz.save_loss_curve(metrics["losses"], schedule.steps_per_epoch, out / "loss.png",
                        f"{args.method} ({args.ops} ops)", metrics["trivial_losses"], method.trivial)
    gap = metrics["loss_below_trivial"]
    print(f"final masked loss {metrics['final_loss']:.4f}, {100 * abs(gap):.0f}% {'below' if gap >= 0 else 'ABOVE'} the "
          f"trivial predictor's {metrics['final_trivial_loss']:.4f} ({method.trivial}, the last epoch's batches); prediction "
          f"spread across patches {metrics['prediction_spread']:.3f} (target {metrics['target_spread']:.3f})")
    print(f"linear probe {metrics['probe_accuracy']:.3f} "
          f"(random init {metrics['random_init_probe_accuracy']:.3f}); {metrics['train_wall_time_s']:.0f} s training; "
          f"{out}")


if __name__ == "__main__":
    main(sys.argv[1:])
