"""patch_mae on a tiny model shaped like facebookresearch/mae's MaskedAutoencoderViT.

The MAE repository is not a package, so `TinyMAE` below re-derives its forward step by step from
models_mae.py (facebookresearch/mae @efb2a80; mimkernels/masking/SPEC.md §2-5, mimkernels/pixel/SPEC.md §1-4): timm-style
PatchEmbed (conv, `patch_size` tuple) and pre-norm Blocks, pos_embed added before masking,
cls + pos_embed[:, :1] prepended after, decoder with MAE's cat/gather/cat unshuffle, loss with
norm_pix. Unpatched, it is the upstream oracle; patched, it runs mimkernels.
"""
import pytest
import torch
from torch import nn

from mimkernels.integrations import is_patched, patch_mae, unpatch

P, IMG, C = 4, 16, 3          # L = 16 patches of D = 48 values
L = (IMG // P) ** 2


class PatchEmbed(nn.Module):
    """timm PatchEmbed: Conv2d stride p, flattened to (N, L, E); patch_size is a tuple."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Block(nn.Module):
    """timm Block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyMAE(nn.Module):
    """MaskedAutoencoderViT's structure and forward, step by step, at toy size."""

    def __init__(self, norm_pix_loss=False, embed_dim=16, decoder_embed_dim=8):
        super().__init__()
        self.patch_embed = PatchEmbed(IMG, P, C, embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, 2)])
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_embed_dim) * 0.02)
        self.decoder_pos_embed = nn.Parameter(torch.randn(1, n + 1, decoder_embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_embed_dim, 2)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, P * P * C)
        self.norm_pix_loss = norm_pix_loss

    def patchify(self, imgs):
        p = self.patch_embed.patch_size[0]
        h = w = imgs.shape[2] // p
        x = imgs.reshape(imgs.shape[0], 3, h, p, w, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(imgs.shape[0], h * w, p * p * 3)

    def random_masking(self, x, mask_ratio):
        n, length, d = x.shape
        len_keep = int(length * (1 - mask_ratio))
        noise = torch.rand(n, length, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, d))
        mask = torch.ones([n, length], device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)
        return x_masked, mask, ids_restore

    def forward_encoder(self, x, mask_ratio):
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio)
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        x = self.decoder_pred(x)
        return x[:, 1:, :]

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6) ** .5
        loss = (pred - target) ** 2
        loss = loss.mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def forward(self, imgs, mask_ratio=0.75):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio)
        pred = self.forward_decoder(latent, ids_restore)
        loss = self.forward_loss(imgs, pred, mask)
        return loss, pred, mask


def _pair(norm_pix=True, seed=0):
    """Two identical models: (upstream, copy to patch)."""
    torch.manual_seed(seed)
    model = TinyMAE(norm_pix_loss=norm_pix)
    twin = TinyMAE(norm_pix_loss=norm_pix)
    twin.load_state_dict(model.state_dict())
    return model, twin


def _imgs(batch=3, seed=1):
    return torch.randn(batch, C, IMG, IMG, generator=torch.Generator().manual_seed(seed))


def _tie_free_seed(batch):
    """A global seed whose first torch.rand(batch, L) has no tie in a row (ours break ties by index,
    MAE's argsort is unstable: only tie-free noise is comparable bit for bit)."""
    for seed in range(100):
        torch.manual_seed(seed)
        noise = torch.rand(batch, L)
        if all(row.unique().numel() == L for row in noise):
            return seed
    raise AssertionError("no tie-free seed")


def _run(model, imgs, seed, mask_ratio=0.75):
    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    loss, pred, mask = model(imgs, mask_ratio)
    loss.backward()
    after = torch.rand(4)  # the global stream after the step
    grads = {n.removeprefix("module."): p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), pred.detach(), mask, grads, after


def _assert_same_step(a, b, exact_pred=True):
    loss_a, pred_a, mask_a, grads_a, after_a = a
    loss_b, pred_b, mask_b, grads_b, after_b = b
    assert torch.equal(mask_a, mask_b) and mask_b.dtype == torch.float32
    assert torch.equal(after_a, after_b), "the patched step consumed the global RNG differently"
    if exact_pred:
        assert torch.equal(pred_a, pred_b)
    else:
        torch.testing.assert_close(pred_a, pred_b, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-6, atol=0)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_patched_step_equals_upstream(norm_pix):
    upstream, patched = _pair(norm_pix)
    patch_mae(patched)
    imgs = _imgs()
    seed = _tie_free_seed(imgs.shape[0])
    _assert_same_step(_run(upstream, imgs, seed), _run(patched, imgs, seed))


@pytest.mark.parametrize("flags", [dict(masking=True, unshuffle=False, loss=False),
                                   dict(masking=False, unshuffle=True, loss=False),
                                   dict(masking=False, unshuffle=False, loss=True)])
def test_each_flag_alone_equals_upstream(flags):
    upstream, patched = _pair()
    patch_mae(patched, **flags)
    names = {"masking": "random_masking", "unshuffle": "forward_decoder", "loss": "forward_loss"}
    assert {n for f, n in names.items() if flags[f]} == {n for n in names.values() if n in patched.__dict__}
    imgs = _imgs()
    seed = _tie_free_seed(imgs.shape[0])
    _assert_same_step(_run(upstream, imgs, seed), _run(patched, imgs, seed))


def test_encoder_mask_and_ids_restore_equal_upstream():
    upstream, patched = _pair()
    patch_mae(patched)
    imgs = _imgs(batch=4)
    seed = _tie_free_seed(4)
    outs = []
    for model in (upstream, patched):
        torch.manual_seed(seed)
        outs.append(model.forward_encoder(imgs, 0.75))
    for ref, got in zip(*outs):
        assert torch.equal(ref, got)
    assert outs[1][2].dtype == torch.int64 and outs[1][0].shape == (4, 1 + L // 4, 16)


@pytest.mark.parametrize("mask_ratio", [0.5, 0.9, 0.0 + 1e-9])
def test_other_mask_ratios(mask_ratio):
    upstream, patched = _pair()
    patch_mae(patched)
    imgs = _imgs()
    seed = _tie_free_seed(imgs.shape[0])
    _assert_same_step(_run(upstream, imgs, seed, mask_ratio), _run(patched, imgs, seed, mask_ratio))


def test_triton_backend_equals_upstream():
    upstream, patched = _pair()
    patch_mae(patched, backend="triton")
    imgs = _imgs(batch=2)
    seed = _tie_free_seed(2)
    _assert_same_step(_run(upstream, imgs, seed), _run(patched, imgs, seed), exact_pred=False)


def test_autocast_bf16_matches_upstream():
    """Under autocast the decoder tokens are bf16 and MAE's torch.cat promotes them to the fp32 mask
    token; the patched decoder does the same, so pred is identical; the loss upcasts bf16 pred to fp32
    as MAE's (pred - target) does on CPU (CPU autocast keeps einsum in fp32)."""
    upstream, patched = _pair()
    patch_mae(patched)
    imgs = _imgs()
    seed = _tie_free_seed(imgs.shape[0])
    runs = []
    for model in (upstream, patched):
        torch.manual_seed(seed)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            runs.append(model(imgs))
    (loss_a, pred_a, mask_a), (loss_b, pred_b, mask_b) = runs
    assert pred_b.dtype == pred_a.dtype == torch.bfloat16 and loss_b.dtype == torch.float32
    assert torch.equal(mask_a, mask_b) and torch.equal(pred_a, pred_b)
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-6, atol=0)


def test_philox_masks_are_seeded_and_differ_from_torch_rand():
    model = _pair()[1]
    patch_mae(model, rng="philox", loss=False)
    x = torch.randn(3, L, 16)
    torch.manual_seed(5)
    a = model.random_masking(x, 0.75)
    torch.manual_seed(5)
    b = model.random_masking(x, 0.75)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert (a[1].sum(1) == L - L // 4).all()
    torch.manual_seed(5)
    assert not torch.equal(a[1], _pair()[0].random_masking(x, 0.75)[1])

    gen = torch.Generator().manual_seed(11)
    patch_mae(model, rng="philox", generator=gen)
    got = model.random_masking(x, 0.75)
    import mimkernels as mk
    want = mk.random_masking(x, 0.75, generator=torch.Generator().manual_seed(11))
    for u, v in zip(got, want):
        assert torch.equal(u, v)


def test_compiled_patched_model_equals_eager():
    """torch.compile of a patched model runs; with rng="philox" its masks and loss equal eager's."""
    model = _pair()[1]
    patch_mae(model, rng="philox")
    imgs = _imgs(batch=2)
    torch.manual_seed(3)
    loss_e, pred_e, mask_e = model(imgs)
    compiled = torch.compile(model, backend="aot_eager")
    torch.manual_seed(3)
    loss_c, pred_c, mask_c = compiled(imgs)
    loss_c.backward()
    assert torch.equal(mask_c, mask_e)
    torch.testing.assert_close(pred_c, pred_e, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=0)


def test_unpatch_restores_and_patch_is_idempotent():
    upstream, model = _pair()
    before = set(model.__dict__)
    params = {n: p.data_ptr() for n, p in model.state_dict().items()}
    patch_mae(model)
    once = set(model.__dict__)
    patch_mae(model, rng="philox")
    assert set(model.__dict__) == once and model.__dict__["_mimkernels_patched"]["rng"] == "philox"
    assert is_patched(model) and "[mimkernels]" in repr(model).splitlines()[0]
    assert {n: p.data_ptr() for n, p in model.state_dict().items()} == params   # no new params / buffers
    assert len(list(model.buffers())) == len(list(upstream.buffers()))
    assert type(upstream).__dict__["forward_loss"] is TinyMAE.forward_loss and "random_masking" not in upstream.__dict__
    unpatch(model)
    assert set(model.__dict__) == before and not is_patched(model)
    assert repr(model) == repr(upstream)
    imgs = _imgs()
    seed = _tie_free_seed(imgs.shape[0])
    _assert_same_step(_run(upstream, imgs, seed), _run(model, imgs, seed))


def test_fork_with_different_structure_is_rejected():
    model = _pair()[1]
    del model.decoder_norm
    with pytest.raises(ValueError, match="decoder_norm"):
        patch_mae(model)
    patch_mae(model, unshuffle=False)  # the other flags do not need it

    fork = _pair()[1]
    fork.random_masking = lambda x, mask_sequence, extra: None   # a fork's masking with its own arguments
    with pytest.raises(ValueError, match="random_masking"):
        patch_mae(fork)
    with pytest.raises(ValueError, match="rng"):
        patch_mae(_pair()[1], rng="numpy")
    with pytest.raises(ValueError, match="philox"):
        patch_mae(_pair()[1], generator=torch.Generator())
    with pytest.raises(TypeError):
        patch_mae(object())


def test_patched_model_under_ddp(tmp_path):
    """Patched before wrapping, as the README says: DDP (gloo, one process, MAE's
    find_unused_parameters=True) runs the bound methods and gives the unwrapped model's gradients."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        upstream, patched = _pair()
        patch_mae(patched)
        wrapped = torch.nn.parallel.DistributedDataParallel(patched, find_unused_parameters=True)
        imgs = _imgs()
        seed = _tie_free_seed(imgs.shape[0])
        _assert_same_step(_run(upstream, imgs, seed), _run(wrapped, imgs, seed))
    finally:
        dist.destroy_process_group()


def test_mask_follows_the_default_dtype_as_upstream():
    """MAE builds its mask with torch.ones([N, L]): the default dtype. So does the patched model."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        upstream, patched = _pair()
        patch_mae(patched)
        seed = _tie_free_seed(3)
        loss_a, _, mask_a, _, _ = _run(upstream, _imgs().double(), seed)
        loss_b, _, mask_b, _, _ = _run(patched, _imgs().double(), seed)
        assert mask_a.dtype == mask_b.dtype == torch.float64 and torch.equal(mask_a, mask_b)
        torch.testing.assert_close(loss_b.double(), loss_a, rtol=1e-6, atol=0)
    finally:
        torch.set_default_dtype(previous)
