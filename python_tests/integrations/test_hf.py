"""patch_hf_vitmae against the real transformers ViTMAE (tiny config, CPU)."""
import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import ViTMAEConfig, ViTMAEForPreTraining, ViTMAEModel  # noqa: E402

from mimkernels.integrations import is_patched, patch_hf_vitmae, unpatch  # noqa: E402

IMG, P = 16, 4
TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])
L = (IMG // P) ** 2


def _config(**kw):
    base = dict(image_size=IMG, patch_size=P, num_channels=3, hidden_size=16, num_hidden_layers=1,
                num_attention_heads=2, intermediate_size=32, decoder_hidden_size=8, decoder_num_hidden_layers=1,
                decoder_num_attention_heads=2, decoder_intermediate_size=16, mask_ratio=0.75, norm_pix_loss=True)
    base.update(kw)
    return ViTMAEConfig(**base)


def _pair(cls=ViTMAEForPreTraining, **kw):
    torch.manual_seed(0)
    model = cls(_config(**kw))
    twin = cls(_config(**kw))
    twin.load_state_dict(model.state_dict())
    return model, twin


def _pixels(batch=3, size=IMG):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def _step(model, pixel_values, noise=None, seed=0, **kw):
    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    out = model(pixel_values, noise=noise, **kw)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads, torch.rand(4)


def _assert_same(a, b):
    (out_a, grads_a, after_a), (out_b, grads_b, after_b) = a, b
    assert torch.equal(out_a.mask, out_b.mask) and out_b.mask.dtype == torch.float32
    assert torch.equal(out_a.ids_restore, out_b.ids_restore)
    torch.testing.assert_close(out_a.logits, out_b.logits, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out_a.loss, out_b.loss, rtol=1e-6, atol=0)
    assert torch.equal(after_a, after_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7, msg=name)


def _tie_free_seed(batch):
    for seed in range(100):
        torch.manual_seed(seed)
        if all(row.unique().numel() == L for row in torch.rand(batch, L)):
            return seed
    raise AssertionError("no tie-free seed")


@pytest.mark.parametrize("norm_pix_loss", [True, False])
@pytest.mark.parametrize("decoder", [False, True])
def test_given_noise_equals_upstream(norm_pix_loss, decoder):
    upstream, patched = _pair(norm_pix_loss=norm_pix_loss)
    patch_hf_vitmae(patched, decoder=decoder)
    pixels = _pixels()
    noise = torch.rand(3, L, generator=torch.Generator().manual_seed(2))
    _assert_same(_step(upstream, pixels, noise), _step(patched, pixels, noise))


def test_drawn_noise_equals_upstream_and_ratio_is_read_from_config():
    upstream, patched = _pair()
    patch_hf_vitmae(patched, decoder=True)
    pixels = _pixels()
    seed = _tie_free_seed(3)
    _assert_same(_step(upstream, pixels, seed=seed), _step(patched, pixels, seed=seed))
    for model in (upstream, patched):
        model.config.mask_ratio = 0.5
    a, b = _step(upstream, pixels, seed=seed), _step(patched, pixels, seed=seed)
    _assert_same(a, b)
    assert (b[0].mask.sum(1) == L // 2).all()


def test_interpolate_pos_encoding_and_return_dict():
    upstream, patched = _pair()
    patch_hf_vitmae(patched, decoder=True)
    pixels = _pixels(size=2 * IMG)
    noise = torch.rand(3, 4 * L, generator=torch.Generator().manual_seed(2))
    _assert_same(_step(upstream, pixels, noise, interpolate_pos_encoding=True),
                 _step(patched, pixels, noise, interpolate_pos_encoding=True))
    if TRANSFORMERS_MAJOR >= 5:   # 4.x's own ViTMAEForPreTraining fails on return_dict=False (tuple from vit)
        tuples = [m(_pixels(), noise=noise[:, :L], return_dict=False) for m in (upstream, patched)]
        assert len(tuples[0]) == len(tuples[1])
        torch.testing.assert_close(tuples[0][0], tuples[1][0], rtol=1e-6, atol=0)


def test_vitmae_model_masking_only():
    upstream, patched = _pair(ViTMAEModel)
    patch_hf_vitmae(patched)
    assert patched.__dict__["_mimkernels_patched"]["loss"] is False
    noise = torch.rand(3, L, generator=torch.Generator().manual_seed(2))
    a, b = upstream(_pixels(), noise=noise), patched(_pixels(), noise=noise)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.ids_restore, b.ids_restore)
    assert torch.equal(a.last_hidden_state, b.last_hidden_state)


def test_philox_rng_and_noise_still_wins():
    model = _pair()[1]
    patch_hf_vitmae(model, rng="philox", generator=torch.Generator().manual_seed(4))
    emb = model.vit.embeddings
    x = torch.randn(2, L, 16)
    import mimkernels as mk
    want = mk.random_masking(x, 0.75, generator=torch.Generator().manual_seed(4))
    for u, v in zip(emb.random_masking(x), want):
        assert torch.equal(u, v)
    noise = torch.rand(2, L)
    for u, v in zip(emb.random_masking(x, noise), mk.random_masking(x, 0.75, noise=noise)):
        assert torch.equal(u, v)


def test_unpatch_idempotent_no_new_state():
    upstream, model = _pair()
    keys = {m: set(m.__dict__) for m in model.modules()}
    state = {n: t.data_ptr() for n, t in model.state_dict().items()}
    patch_hf_vitmae(model, decoder=True)
    patch_hf_vitmae(model, decoder=True)
    assert is_patched(model) and "[mimkernels]" in repr(model).splitlines()[0]
    assert {n: t.data_ptr() for n, t in model.state_dict().items()} == state
    unpatch(model)
    assert {m: set(m.__dict__) for m in model.modules()} == keys and not is_patched(model)
    assert repr(model) == repr(upstream)
    noise = torch.rand(3, L, generator=torch.Generator().manual_seed(5))
    _assert_same(_step(upstream, _pixels(), noise), _step(model, _pixels(), noise))


def test_compiled_patched_model_runs():
    upstream, model = _pair()
    patch_hf_vitmae(model, decoder=True)
    noise = torch.rand(2, L, generator=torch.Generator().manual_seed(2))
    got = torch.compile(model, backend="aot_eager")(_pixels(2), noise=noise)
    want = upstream(_pixels(2), noise=noise)
    assert torch.equal(got.mask, want.mask)
    torch.testing.assert_close(got.loss, want.loss, rtol=1e-6, atol=0)
    got.loss.backward()


def test_bad_arguments():
    with pytest.raises(ValueError, match="rng"):
        patch_hf_vitmae(_pair()[1], rng="numpy")
    with pytest.raises(ValueError, match="neither"):
        patch_hf_vitmae(torch.nn.Linear(2, 2))
    model = _pair()[1]
    model.config.mask_ratio = 1.5
    patch_hf_vitmae(model)
    with pytest.raises(ValueError, match="mask_ratio"):
        model(_pixels())


# ---- SimMIM: ViTForMaskedImageModeling ----

def _simmim_pair():
    from transformers import ViTConfig, ViTForMaskedImageModeling

    cfg = dict(image_size=IMG, patch_size=P, encoder_stride=P, num_channels=3, hidden_size=16, num_hidden_layers=1,
               num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(0)
    model = ViTForMaskedImageModeling(ViTConfig(**cfg))
    twin = ViTForMaskedImageModeling(ViTConfig(**cfg))
    twin.load_state_dict(model.state_dict())
    return model, twin


@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.int64])
def test_simmim_patched_step_equals_upstream(mask_dtype):
    from mimkernels.integrations import patch_hf_simmim

    upstream, patched = _simmim_pair()
    patch_hf_simmim(patched)
    pixels = _pixels()
    masked = (torch.rand(3, L, generator=torch.Generator().manual_seed(3)) < 0.6).to(mask_dtype)
    runs = []
    for model in (upstream, patched):
        model.zero_grad(set_to_none=True)
        out = model(pixels, bool_masked_pos=masked)
        out.loss.backward()
        runs.append((out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (a, grads_a), (b, grads_b) = runs
    assert torch.equal(a.reconstruction, b.reconstruction)
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-6, atol=0)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7, msg=name)
    assert patched(pixels).loss is None
    assert len(patched(pixels, bool_masked_pos=masked, return_dict=False)) == 2
    unpatch(patched)
    assert "forward" not in patched.__dict__


def test_hf_simmim_loss_shapes_dtypes_and_empty_mask():
    from mimkernels.integrations import hf_simmim_loss

    pixels = _pixels(2)
    rec = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(4))
    flat = torch.rand(2, L, generator=torch.Generator().manual_seed(5)) < 0.5
    up = flat.reshape(2, IMG // P, IMG // P).repeat_interleave(P, 1).repeat_interleave(P, 2).unsqueeze(1)
    want = (torch.nn.functional.l1_loss(pixels.double(), rec.double(), reduction="none") * up).sum() \
        / (up.sum() + 1e-5) / 3
    for mask in (flat, flat.long(), flat.float(), flat.reshape(2, IMG // P, IMG // P)):
        got = hf_simmim_loss(pixels, rec, mask, P, 3)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=0)
    got16 = hf_simmim_loss(pixels, rec.bfloat16(), flat, P)
    want16 = (torch.nn.functional.l1_loss(pixels.double(), rec.bfloat16().double(), reduction="none") * up).sum() \
        / (up.sum() + 1e-5) / 3
    torch.testing.assert_close(got16.double(), want16, rtol=1e-6, atol=0)
    assert hf_simmim_loss(pixels, rec, torch.zeros_like(flat), P).item() == 0
    with pytest.raises(ValueError, match="patches"):
        hf_simmim_loss(pixels, rec, flat[:, :-1], P)


class ViTMAEWithForwardLoss(ViTMAEForPreTraining):
    """The transformers 4.x layout, where forward calls self.forward_loss(pixel_values, pred, mask,
    interpolate_pos_encoding): forward_loss re-derived from 4.x, step by step."""

    def forward_loss(self, pixel_values, pred, mask, interpolate_pos_encoding=False):
        target = self.patchify(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        if self.config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def forward(self, pixel_values=None, noise=None, interpolate_pos_encoding=None, **kwargs):
        out = self.vit(pixel_values, noise=noise, interpolate_pos_encoding=interpolate_pos_encoding)
        logits = self.decoder(out.last_hidden_state, out.ids_restore,
                              interpolate_pos_encoding=interpolate_pos_encoding).logits
        loss = self.forward_loss(pixel_values, logits, out.mask, interpolate_pos_encoding=interpolate_pos_encoding)
        from transformers.models.vit_mae.modeling_vit_mae import ViTMAEForPreTrainingOutput

        return ViTMAEForPreTrainingOutput(loss=loss, logits=logits, mask=out.mask, ids_restore=out.ids_restore)


def test_releases_with_forward_loss_get_it_replaced():
    upstream, patched = _pair(ViTMAEWithForwardLoss)
    patch_hf_vitmae(patched)
    assert "forward_loss" in patched.__dict__ and "forward" not in patched.__dict__
    noise = torch.rand(3, L, generator=torch.Generator().manual_seed(2))
    _assert_same(_step(upstream, _pixels(), noise), _step(patched, _pixels(), noise))


def test_simmim_collator_batches_masks_the_model_takes():
    import mimkernels as mk
    from mimkernels.integrations import SimMIMCollator, patch_hf_simmim

    collate = SimMIMCollator(input_size=IMG, mask_patch_size=8, model_patch_size=P, mask_ratio=0.6, seed=3)
    seed = collate.step_seed()
    examples = [{"pixel_values": img} for img in _pixels(5)]
    batch = collate(examples)
    assert set(batch) == {"pixel_values", "bool_masked_pos"} and torch.equal(batch["pixel_values"], _pixels(5))
    mask = batch["bool_masked_pos"]
    assert mask.shape == (5, L) and mask.dtype == torch.int64
    assert torch.equal(mask, mk.simmim_mask(5, IMG, 8, P, 0.6, seed=seed).flatten(1).long())
    cells = mask.reshape(5, 2, 2, 2, 2)[:, :, 0, :, 0]          # one value per 8x8 mask patch
    assert (cells.sum((1, 2)) == 3).all()                       # ceil(4 · 0.6) = 3 mask patches
    assert torch.equal(cells.repeat_interleave(2, 1).repeat_interleave(2, 2).reshape(5, L), mask)
    assert not torch.equal(collate(examples)["bool_masked_pos"], mask)   # next step, next masks
    boolean = SimMIMCollator(IMG, 8, P, 0.6, mask_dtype=torch.bool)([e["pixel_values"] for e in examples])
    assert boolean["bool_masked_pos"].dtype == torch.bool
    upstream, patched = _simmim_pair()
    patch_hf_simmim(patched)
    torch.testing.assert_close(patched(**batch).loss, upstream(**batch).loss, rtol=1e-6, atol=0)
    with pytest.raises(ValueError):
        SimMIMCollator(IMG, 5, P)


# ---- what transformers and its tests inspect; transformers 4.x layouts; the environment ----

def test_patched_forward_keeps_signature_docstring_and_annotations():
    import inspect
    import typing

    from transformers import ViTForMaskedImageModeling

    from mimkernels.integrations import patch_hf_simmim

    for (upstream, patched), patcher in ((_pair(), patch_hf_vitmae), (_simmim_pair(), patch_hf_simmim)):
        patcher(patched)
        name = "forward_loss" if hasattr(type(upstream), "forward_loss") else "forward"   # 4.x ViTMAE: forward_loss
        assert name in patched.__dict__
        ours, theirs = getattr(patched, name), getattr(upstream, name)
        assert inspect.signature(ours) == inspect.signature(theirs)
        assert ours.__doc__ == theirs.__doc__
        assert typing.get_type_hints(ours) == typing.get_type_hints(theirs)
        if TRANSFORMERS_MAJOR >= 5:   # **kwargs: Unpack[TransformersKwargs], which HF's output checks look for
            assert patched.forward.__doc__ and _can_output_attn(patched) and _can_output_attn(upstream)
    assert isinstance(upstream, ViTForMaskedImageModeling)
    model = _pair()[1]
    patch_hf_vitmae(model, decoder=True)
    assert inspect.signature(model.decoder.forward) == inspect.signature(type(model.decoder).forward.__get__(model))
    assert inspect.signature(model.vit.embeddings.random_masking).parameters.keys() == {"sequence", "noise"}


def _can_output_attn(model):
    """transformers' tests/test_modeling_common.py check (5.x), restated: without it the SDPA/eager
    attention-output tests skip with "Model does not support output_attentions"."""
    import inspect

    parameters = inspect.signature(model.forward).parameters
    if "output_attentions" in parameters:
        return True
    kwargs = parameters.get("kwargs")
    try:
        return kwargs is not None and "output_attentions" in kwargs.annotation.__args__[0].__annotations__
    except AttributeError:
        return False


def test_output_attentions_and_hidden_states_pass_through():
    for upstream, patched in (_pair(attn_implementation="eager"),):
        patch_hf_vitmae(patched)
        noise = torch.rand(3, L, generator=torch.Generator().manual_seed(2))
        a = upstream(_pixels(), noise=noise, output_attentions=True, output_hidden_states=True)
        b = patched(_pixels(), noise=noise, output_attentions=True, output_hidden_states=True)
        assert len(a.attentions) == len(b.attentions) == 1 and len(a.hidden_states) == len(b.hidden_states) == 2
        torch.testing.assert_close(a.attentions[0], b.attentions[0], rtol=0, atol=0)


@pytest.mark.parametrize("default_dtype", [torch.float64, torch.float32])
def test_mask_follows_the_default_dtype_as_upstream(default_dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(default_dtype)
    try:
        upstream, patched = _pair()
        patch_hf_vitmae(patched)
        noise = torch.rand(3, L, generator=torch.Generator().manual_seed(2))
        a, b = upstream(_pixels().to(default_dtype), noise=noise), patched(_pixels().to(default_dtype), noise=noise)
        assert a.mask.dtype == b.mask.dtype == default_dtype and torch.equal(a.mask, b.mask)
        torch.testing.assert_close(b.loss.double(), a.loss.double(), rtol=1e-6, atol=0)
    finally:
        torch.set_default_dtype(previous)


def _simmim_4x_class():
    """ViTForMaskedImageModeling.forward as transformers 4.40-4.55 lay it out (head_mask before
    interpolate_pos_encoding, return_dict a parameter; 4.46.3's, step by step)."""
    from transformers import ViTForMaskedImageModeling
    from transformers.modeling_outputs import MaskedImageModelingOutput

    class ViTForMaskedImageModeling4x(ViTForMaskedImageModeling):
        def forward(self, pixel_values=None, bool_masked_pos=None, head_mask=None, output_attentions=None,
                    output_hidden_states=None, interpolate_pos_encoding=None, return_dict=None):
            """4.x docstring."""
            return_dict = return_dict if return_dict is not None else self.config.return_dict
            outputs = self.vit(pixel_values, bool_masked_pos=bool_masked_pos, head_mask=head_mask,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               interpolate_pos_encoding=interpolate_pos_encoding, return_dict=True)
            sequence_output = outputs.last_hidden_state[:, 1:]
            batch_size, sequence_length, num_channels = sequence_output.shape
            height = width = int(sequence_length ** 0.5)
            sequence_output = sequence_output.permute(0, 2, 1).reshape(batch_size, num_channels, height, width)
            reconstructed = self.decoder(sequence_output)
            loss = None
            if bool_masked_pos is not None:
                size = self.config.image_size // self.config.patch_size
                bool_masked_pos = bool_masked_pos.reshape(-1, size, size)
                mask = bool_masked_pos.repeat_interleave(self.config.patch_size, 1).repeat_interleave(
                    self.config.patch_size, 2).unsqueeze(1).contiguous()
                rec = torch.nn.functional.l1_loss(pixel_values, reconstructed, reduction="none")
                loss = (rec * mask).sum() / (mask.sum() + 1e-5) / self.config.num_channels
            out = MaskedImageModelingOutput(loss=loss, reconstruction=reconstructed,
                                            hidden_states=outputs.hidden_states, attentions=outputs.attentions)
            return out if return_dict else out.to_tuple()

    return ViTForMaskedImageModeling4x


def test_simmim_transformers_4x_layout_is_supported():
    """patch_hf_simmim takes 4.x's forward (head_mask precedes interpolate_pos_encoding): positional and
    keyword calls reach the model's vit as upstream's do. Checked by hand against the real 4.46.3 too (README)."""
    import inspect

    from transformers import ViTConfig

    from mimkernels.integrations import patch_hf_simmim

    cls = _simmim_4x_class()
    cfg = ViTConfig(image_size=IMG, patch_size=P, encoder_stride=P, num_channels=3, hidden_size=16,
                    num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(0)
    upstream, patched = cls(cfg), cls(cfg)
    patched.load_state_dict(upstream.state_dict())
    patch_hf_simmim(patched)
    assert inspect.signature(patched.forward) == inspect.signature(upstream.forward)
    assert patched.forward.__doc__ == "4.x docstring."
    masked = torch.rand(3, L, generator=torch.Generator().manual_seed(3)) < 0.6
    pixels = _pixels()
    for args, kwargs in (((pixels, masked), {}), ((pixels, masked, None, False, True, False, True), {}),
                         ((pixels,), dict(bool_masked_pos=masked, output_hidden_states=True, return_dict=False))):
        a, b = upstream(*args, **kwargs), patched(*args, **kwargs)
        a, b = (a.to_tuple(), b.to_tuple()) if not isinstance(a, tuple) else (a, b)
        assert len(a) == len(b)
        torch.testing.assert_close(a[0], b[0], rtol=1e-6, atol=0)
        for u, v in zip(a[1:], b[1:]):
            torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_transformers_imports_after_mimkernels_integrations_in_a_fresh_process():
    """The README's order: `mimkernels.integrations` first makes torchvision importable beside a CPU torch
    (a no-op where torchvision loads), so `from transformers import ViTMAEForPreTraining` works."""
    import os
    import subprocess
    import sys

    code = ("import mimkernels.integrations as mi; from transformers import ViTMAEForPreTraining, "
            "ViTForMaskedImageModeling; print(mi.TORCHVISION_STATE)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "torchvision" in run.stdout
