"""Linear probe: freeze the encoder, embed whole (un-augmented) images, fit a linear classifier on
the features in closed form (ridge regression onto one-hot labels, the penalty picked on a held-out
fifth of the training images), report test accuracy.
"""
from __future__ import annotations

import torch

from mimkernels.train.data import ImageSet

PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)   # times the number of training samples


@torch.no_grad()
def features(method, images: ImageSet, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """(N, F) float64 features of the frozen encoder of `method` (cls token and mean patch token)."""
    was_training = method.training
    method.eval()
    out = []
    for start in range(0, len(images), batch_size):
        imgs = images.floats(slice(start, start + batch_size)).to(device)
        out.append(method.encoder.features(method.encoder_rows(imgs)).double().cpu())
    method.train(was_training)
    return torch.cat(out)


def _fit(x: torch.Tensor, y: torch.Tensor, num_classes: int, penalty: float):
    """Ridge weights (F + 1, classes) of standardized x onto one-hot y."""
    onehot = torch.nn.functional.one_hot(y, num_classes).double()
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    reg = penalty * len(x) * torch.eye(x1.shape[1], dtype=x.dtype)
    reg[-1, -1] = 0                                          # no penalty on the bias
    return torch.linalg.solve(x1.T @ x1 + reg, x1.T @ onehot)


def _accuracy(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    return (x1 @ weights).argmax(1).eq(y).double().mean().item()


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 num_classes: int) -> float:
    """Test accuracy of the ridge classifier fit on (train_x, train_y)."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-8)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))  # folders come class by class
    train_x, train_y = train_x[order], train_y[order]
    split = len(train_x) * 4 // 5
    best = max(PENALTIES, key=lambda lam: _accuracy(_fit(train_x[:split], train_y[:split], num_classes, lam),
                                                   train_x[split:], train_y[split:]))
    return _accuracy(_fit(train_x, train_y, num_classes, best), test_x, test_y)


def probe(method, train: ImageSet, test: ImageSet, device: torch.device) -> float:
    """Linear-probe test accuracy of `method`'s encoder as it is now."""
    return linear_probe(features(method, train, device), train.labels, features(method, test, device), test.labels,
                        len(train.classes))
