"""torch.library glue: one declaration per (op, backend) puts it in the catalogue
`torch.ops.mimkernels.<op>.<backend>` with its fake and, for a differentiable op, its backward.

    define_op("masked_mse_loss.triton", kernels.masked_mse_loss, fake=scalar_fake, triton=True,
              backward=kernels.masked_mse_loss_backward, differentiable=("pred", "target"))

- `forward` is a type-annotated function (torch infers the schema from it). triton=True: it launches
  Triton kernels through `_triton_lib.triton_launch`; on the GPU the op is a `triton_op`
  (torch.compile traces into the kernels), under the interpreter a `custom_op` with `fake`
  (triton_op + wrap_triton fail opcheck and compile there). triton=False: a `custom_op` with `fake`
  (native kernels, opaque to the compiler); `device_types` pins it to "cpu" (cpp) or "cuda" (cuda).
- `backward` is the backward kernel, typed too: (grad, *the forward's inputs, needs: list[bool]) ->
  list[Tensor], one gradient per name in `differentiable` (any tensor where needs[i] is False: it is
  dropped). It becomes `torch.ops.mimkernels.<op>.<backend>_backward` with a fake of the gradients'
  shapes (`backward_fake` overrides it), and the op's autograd. The tensors of the forward that the
  backward does not read (`reads`, default: all) are not saved: the backward gets a stride-0
  stand-in of the same shape, dtype and device, which keeps no memory alive.
- `define_reference(op, fn)` registers an eager reference as `<op>.torch` (CompositeImplicitAutograd:
  autograd and compile see its torch ops), so an op with no kernel is in the catalogue too.

Nothing here names a family: the Triton kernels of a triton op are those of its forward's family
package (`mimkernels.<family>` and its modules).
"""
from __future__ import annotations

import inspect
import sys
from typing import Callable, Sequence

import torch
from torch._library import utils as library_utils

from mimkernels import _backends
from mimkernels._backends import TRITON_INTERPRET

_lib = torch.library.Library("mimkernels", "FRAGMENT")
_OPTIONAL_TENSOR = torch._C.OptionalType(torch._C.TensorType.get())
# qualname of each triton_op -> its family package, whose modules hold its kernels (register_triton_kernels)
_TRITON_OPS: dict[str, str] = {}


def _custom_op(qualname: str, fn: Callable, fake: Callable | None, triton: bool, device_types: str | None):
    if triton and not TRITON_INTERPRET:
        _TRITON_OPS[qualname] = ".".join(fn.__module__.split(".")[:2])
        return torch.library.triton_op(qualname, fn, mutates_args=())
    op = torch.library.custom_op(qualname, fn, mutates_args=(), device_types=device_types)
    op.register_fake(fake)
    schema = op._opoverload._schema
    tensor_types = [a.type for a in schema.arguments if library_utils.is_tensor_like_type(a.type)]
    if device_types is not None and tensor_types and all(t == _OPTIONAL_TENSOR for t in tensor_types):
        # A factory op whose only tensors are optional (a seed tensor, rng.md): when they are None nothing names
        # the backend, so it dispatches on its `device` argument, as torch does for an op without tensors.
        op._register_backend_select_dispatcher(library_utils.get_device_arg_index(schema))
    return op


def _tensor_params(fn: Callable) -> tuple[list[str], set[str]]:
    params = inspect.signature(fn).parameters
    tensors = {n for n, p in params.items() if "Tensor" in str(p.annotation)}
    return list(params), tensors


def _grads_fake(params: list[str], differentiable: Sequence[str]) -> Callable:
    index = [params.index(n) for n in differentiable]

    def fake(grad, *inputs_and_needs):
        *inputs, needs = inputs_and_needs
        return [torch.empty_like(inputs[i], memory_format=torch.contiguous_format) if need
                else inputs[i].new_empty((0,)) for i, need in zip(index, needs)]
    return fake


def define_op(name: str, forward: Callable, *, fake: Callable | None = None, triton: bool = False,
              device_types: str | None = None, backward: Callable | None = None,
              differentiable: Sequence[str] = (), reads: Sequence[str] | None = None,
              backward_fake: Callable | None = None):
    """Register `torch.ops.mimkernels.<name>` (name "<op>.<backend>") and return its CustomOpDef
    (module docstring)."""
    op = _custom_op(f"mimkernels::{name}", forward, fake, triton, device_types)
    _backends.register(*name.split("."))
    if backward is None:
        return op
    params, tensors = _tensor_params(forward)
    index = [params.index(n) for n in differentiable]
    kept = tensors if reads is None else set(reads)
    grad_op = _custom_op(f"mimkernels::{name}_backward", backward,
                         backward_fake or _grads_fake(params, differentiable), triton, device_types)

    def setup_context(ctx, inputs, output):
        ctx.args = [None if n in tensors else v for n, v in zip(params, inputs)]
        ctx.stand_ins = {i: (v.shape, v.dtype, v.device) for i, (n, v) in enumerate(zip(params, inputs))
                         if n in tensors and n not in kept and v is not None}
        ctx.saved_at = [i for i, n in enumerate(params) if n in kept]
        ctx.save_for_backward(*(inputs[i] for i in ctx.saved_at))

    def autograd_backward(ctx, grad):
        args = list(ctx.args)
        for i, t in zip(ctx.saved_at, ctx.saved_tensors):
            args[i] = t
        for i, (shape, dtype, device) in ctx.stand_ins.items():
            args[i] = torch.empty((), dtype=dtype, device=device).expand(shape)
        needs = [bool(ctx.needs_input_grad[i]) for i in index]
        grads = grad_op(grad, *args, needs)
        out = [None] * len(params)
        for k, (i, need) in enumerate(zip(index, needs)):
            out[i] = grads[k] if need else None
        return tuple(out)

    op.register_autograd(autograd_backward, setup_context=setup_context)
    return op


def define_native(name: str, forward: Callable, *, fake: Callable, **autograd):
    """The same native glue (`_C` through plain pointers, device picked inside) as `<name>.cpp` on
    CPU tensors and `<name>.cuda` on CUDA tensors."""
    if not autograd:
        _DIRECT_CPP[name] = forward
    return tuple(define_op(f"{name}.{backend}", forward, fake=fake, device_types=device, **autograd)
                 for backend, device in (("cpp", "cpu"), ("cuda", "cuda")))


# op -> its native glue, for the non-differentiable native ops: what `call` runs for backend "cpp" in eager mode.
_DIRECT_CPP: dict[str, Callable] = {}


def call(name: str, backend: str, *args):
    """`torch.ops.mimkernels.<name>.<backend>(*args)`; outside torch.compile the cpp overload of a
    non-differentiable native op runs its glue directly, the same function: the dispatcher's round trip
    (~35 µs) costs as much as a small mask kernel."""
    if backend == "cpp" and name in _DIRECT_CPP and not torch.compiler.is_compiling():
        return _DIRECT_CPP[name](*args)
    return getattr(getattr(torch.ops.mimkernels, name), backend)(*args)


def define_reference(name: str, fn: Callable) -> None:
    """`torch.ops.mimkernels.<name>.torch`: the eager reference `fn` (typed), CompositeImplicitAutograd."""
    schema = torch.library.infer_schema(fn, mutates_args=())
    _lib.define(f"{name}.torch{schema}")
    _lib.impl(f"{name}.torch", fn, "CompositeImplicitAutograd")
    _backends.register(name, "torch")


def register_triton_kernels() -> None:
    """Give each triton_op the kernels of its family (call once all families are imported).
    torch.compile's AOTAutograd cache hashes an op's kernel sources into its key, and torch's scan of
    the op body cannot follow a launcher into another module: without this, an edited kernel would be
    served from the cache as compiled before the edit."""
    if not _TRITON_OPS:
        return
    from torch._library.triton import triton_ops_to_kernels
    from triton.runtime.jit import JITFunction

    for qualname, family in _TRITON_OPS.items():
        modules = [m for name, m in list(sys.modules.items()) if name == family or name.startswith(family + ".")]
        triton_ops_to_kernels[qualname] = list({id(obj): obj for m in modules for obj in vars(m).values()
                                                if isinstance(obj, JITFunction)}.values())
