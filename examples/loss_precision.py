# examples/loss_precision.py: the fused losses against upstream's arithmetic in bf16 and fp16, both against fp64
"""Models run in bf16/fp16 (`model.to(dtype)`, `torch_dtype=`) feed the loss low-precision predictions and
images. Upstream then computes the per-patch statistics, the squares and the mean over each patch in that
dtype; mimkernels' losses read the same tensors and compute in fp32. Printed: each loss's relative error
against the fp64 value of the same formula on the same (rounded) inputs, median over seeds. CPU, about 10 s."""
import statistics

import torch

import mimkernels as mk

B, S, P, C = 8, 224, 16, 3            # MAE's canonical patch grid: 196 patches of 768 values


def patchify(imgs, p):
    b, c, h, w = imgs.shape
    return imgs.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, p * p * c)


def mae_upstream(pred, imgs, mask, p):          # models_mae.forward_loss = transformers ViTMAE, norm_pix_loss=True
    target = patchify(imgs, p)
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
    return (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()


def simmim_upstream(rec, imgs, mask, p):        # transformers ViTForMaskedImageModeling (SimMIM's formula)
    up = mask.repeat_interleave(p, 1).repeat_interleave(p, 2).unsqueeze(1)
    return (torch.nn.functional.l1_loss(imgs, rec, reduction="none") * up).sum() / (up.sum() + 1e-5) / imgs.shape[1]


def maskfeat_upstream(pred, target, mask):      # mmpretrain PixelReconstructionLoss("L2") on HOG rows
    return ((pred - target) ** 2).mean(-1).mul(mask).sum() / mask.sum()


def relative_errors(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand(B, C, S, S, generator=g).to(dtype)
    mask = (torch.rand(B, (S // P) ** 2, generator=g) < 0.75).float()
    pred = (patchify(imgs.double(), P) + 0.5 * torch.randn(B, (S // P) ** 2, P * P * C, generator=g, dtype=torch.double))
    pred = pred.to(dtype)
    rec = (imgs.double() + 0.1 * torch.randn(imgs.shape, generator=g, dtype=torch.double)).to(dtype)
    low_res = mask.reshape(B, S // P, S // P)
    hog = torch.rand(B, 196, 108, generator=g).to(dtype)
    hog_pred = (hog.double() + 0.1 * torch.randn(hog.shape, generator=g, dtype=torch.double)).to(dtype)
    cases = {
        "MAE norm_pix MSE": (mae_upstream, lambda: mk.norm_pix_mse_loss(pred, imgs, mask, P), (pred, imgs, mask, P)),
        "SimMIM L1": (simmim_upstream, lambda: mk.masked_l1_loss(rec, imgs, low_res, C), (rec, imgs, low_res, P)),
        "MaskFeat MSE": (maskfeat_upstream, lambda: mk.masked_mse_loss(hog_pred, hog, mask), (hog_pred, hog, mask)),
    }
    out = {}
    for name, (upstream, ours, args) in cases.items():
        exact = upstream(*[a.double() if isinstance(a, torch.Tensor) else a for a in args]).item()
        out[name] = (abs(upstream(*args).double().item() - exact) / exact, abs(ours().double().item() - exact) / exact)
    return out


print("| loss | inputs | upstream's arithmetic: relative error | mimkernels: relative error |")
print("|---|---|---|---|")
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    runs = [relative_errors(dtype, seed) for seed in range(5)]
    for name in runs[0]:
        up, ours = (statistics.median(r[name][i] for r in runs) for i in (0, 1))
        print(f"| {name} | {str(dtype).removeprefix('torch.')} | {up:.1e} | {ours:.1e} |")
