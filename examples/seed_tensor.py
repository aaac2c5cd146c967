# examples/seed_tensor.py: a seed held in a tensor: a new mask each step with no recompile, and in CUDA graphs
import torch

import mimkernels as mk
from mimkernels import rng

device = "cuda" if torch.cuda.is_available() else "cpu"
tokens = torch.randn(8, 196, 64, device=device)
seed = rng.seed_tensor(1234, step=0, device=device)  # (seed, step) int64: the key is derive_seed(1234, step)
torch._dynamo.config.error_on_recompile = True  # a new seed value must not recompile


@torch.compile(fullgraph=True)
def encoder_input(tokens, seed):
    visible, mask, ids_restore = mk.random_masking(tokens, 0.75, seed=seed)
    return visible.mean(), mask


for step in range(3):
    _, mask = encoder_input(tokens, seed)  # the seed's value is read inside the kernel
    _, eager_mask, _ = mk.random_masking(tokens, 0.75, seed=rng.derive_seed(1234, step))
    assert torch.equal(mask, eager_mask)
    rng.advance(seed)  # in place, seed[1] += 1: the next step's masks

if device == "cuda":  # a captured graph draws new masks on every replay: rng.advance is captured too
    seed = rng.seed_tensor(1234, device=device)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture, as CUDA graphs require
        mk.random_masking(tokens, 0.75, seed=seed)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        _, mask, _ = mk.random_masking(tokens, 0.75, seed=seed)
        rng.advance(seed)
    for step in range(3):
        graph.replay()
        assert torch.equal(mask, mk.random_masking(tokens, 0.75, seed=rng.derive_seed(1234, step))[1])
print("seed tensor: the masks of steps 0-2 equal derive_seed(1234, step)'s, compiled once"
      + (", and in a CUDA graph" if device == "cuda" else ""))
