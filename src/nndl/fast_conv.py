"""Backpropagation through the CNN's conv-pool layers, written out, with the SGD update in place: the CNN's
default path (``model.backprop=fast``) wherever it reproduces autograd and ``torch.optim.SGD``.

Chapter 6 leaves these equations as a problem ("Backpropagation in a convolutional network"). For a conv-pool
layer l with k×k local receptive fields, shared weights w^l (one k×k×c kernel per feature map), biases b^l,
activation σ and max-pooling, on the mini-batch's m examples:

- feed-forward: z^l = w^l * a^{l−1} + b^l, the convolution as one matrix product: each output position's
  receptive field of a^{l−1} (k·k·c values) is a row of ``cols`` (im2col), so z^l = cols (w^l)ᵀ + b^l; a = σ(z),
  then the max over each pool window (or pool, then σ, with ``model.pool_first``).
- backward, from ∂C/∂(pooled output) handed down by the layer above: max-pooling routes each window's error to
  the position that won it (the rest get 0), δ^l = that ⊙ σ'(z^l) (BP2's Hadamard product), computed at the
  pooled positions before the routing (a quarter of the values for 2×2 windows);
  ∂C/∂b^l = Σ over examples and positions of δ^l (each feature map's bias is shared by its positions: BP3 summed);
  ∂C/∂w^l = (δ^l)ᵀ cols (BP4, summed over the positions that share the weights); the error of the layer's input,
  ∂C/∂a^{l−1}, is the full convolution of δ^l with the flipped kernels (``convolution_backward``, the operation
  autograd calls: oneDNN's backward-data kernel in float32; before w^l moves).

The fully connected layers on top are the MLP's ``FastBackprop``, which hands down ∂C/∂a of the last feature maps.
Everything runs in channels-last (NHWC) layout, where a receptive field's values lie together in memory.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nndl.costs import Cost
from nndl.fast_backprop import (
    FAST_ACTIVATIONS,
    FastBackprop,
    activate,
    backward_activation,
    sgd_refusal,
    sgd_step,
    weight_step,
)


class ConvBlock:
    """One conv-pool layer of ``nndl.models.CNN``'s ``features``: its ``nn.Conv2d``, ``nn.MaxPool2d``, the
    activation's name, and whether it pools before the activation."""

    def __init__(self, conv: nn.Conv2d, pool: nn.MaxPool2d, activation: str, pool_first: bool) -> None:
        self.conv, self.activation, self.pool_first = conv, activation, pool_first
        self.k, self.padding = conv.kernel_size[0], conv.padding[0]
        self.pool = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
        self.buffers: dict[tuple, Tensor] = {}  # the large per-mini-batch matrices, reused from one to the next

    def buffer(self, name: str, shape: tuple[int, ...], like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """A tensor of ``shape`` (channels-last if 4-d) kept for this block and reused: allocating a megabyte
        afresh for every mini-batch costs more in page faults than the work done in it."""
        dtype = dtype or like.dtype
        key = (name, shape, dtype, like.device)
        if key not in self.buffers:
            layout = torch.channels_last if len(shape) == 4 else torch.contiguous_format
            self.buffers[key] = torch.empty(shape, dtype=dtype, device=like.device, memory_format=layout)
        return self.buffers[key]

    def max_pool(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The max over each pool window of z (m, c, h, w), and where in z each came from."""
        m, c, h, w = z.shape
        shape, size = (m, c, h // self.pool, w // self.pool), [self.pool, self.pool]
        pooled, where = self.buffer("pooled", shape, z), self.buffer("where", shape, z, torch.int64)
        pool = torch.ops.aten.max_pool2d_with_indices.out
        return pool(z, size, size, [0, 0], [1, 1], False, out=pooled, indices=where)

    def unpool(self, grad: Tensor, pooled_input: Tensor, where: Tensor) -> Tensor:
        """Max-pooling's backward: each window's error to the position ``where`` it came from, 0 to the others."""
        size, out = [self.pool, self.pool], self.buffer("unpooled", tuple(pooled_input.shape), pooled_input)
        return torch.ops.aten.max_pool2d_with_indices_backward.grad_input(
            grad, pooled_input, size, size, [0, 0], [1, 1], False, where, grad_input=out
        )

    @staticmethod
    def channels_last(w: Tensor) -> bool:
        """Whether the weights w (out, c, k, k) lie channels-last in memory, each kernel as (kh, kw, c) rather than
        (c, kh, kw); with one input channel the two orders are one."""
        return not (w.shape[1] == 1 or w.is_contiguous())

    def matrix(self, w: Tensor) -> Tensor:
        """w (out, c, k, k) (or its gradient) as the (out, k·k·c) matrix of the product, a view of its memory."""
        return (w.permute(0, 2, 3, 1) if self.channels_last(w) else w).view(len(w), -1)

    def im2col(self, a: Tensor, channels_last: bool) -> Tensor:
        """The receptive fields of a (m, H, W, c), NHWC, as the rows of a (m·oh·ow, k·k·c) matrix whose columns
        run as the weight matrix's."""
        m, h, w, c = a.shape
        k, (sn, sh, sw, sc) = self.k, a.stride()
        oh, ow = h - k + 1, w - k + 1
        if c == 1:  # (kh, kw) major, each row of the image's pixels copied whole; used transposed
            fields = a.as_strided((k, k, m, oh, ow), (sh, sw, sn, sh, sw))
            return self.buffer("cols", (k * k, m * oh * ow), a).view(fields.shape).copy_(fields).view(k * k, -1).t()
        if channels_last:
            fields = a.as_strided((m, oh, ow, k, k, c), (sn, sh, sw, sh, sw, sc))
        else:
            fields = a.as_strided((m, oh, ow, c, k, k), (sn, sh, sw, sc, sh, sw))
        return self.buffer("cols", (m * oh * ow, k * k * c), a).view(fields.shape).copy_(fields).view(m * oh * ow, -1)


def conv_blocks(features: nn.Sequential) -> list[ConvBlock] | str:
    """``CNN.features`` as conv-pool blocks, or why the fast path cannot run them (BatchNorm, another activation,
    another layer)."""
    blocks: list[ConvBlock] = []
    modules = list(features)
    while modules:
        conv, *rest = modules
        n = next((i for i, module in enumerate(rest) if isinstance(module, nn.Conv2d)), len(rest))
        block, modules = rest[:n], rest[n:]
        kinds = [type(module) for module in block]
        if any(issubclass(kind, nn.BatchNorm2d) for kind in kinds):
            return "batch_norm"
        if len(block) != 2 or nn.MaxPool2d not in kinds or not isinstance(conv, nn.Conv2d):
            return f"a block {[type(m).__name__ for m in (conv, *block)]}"
        pool_first = kinds[0] is nn.MaxPool2d
        pool, activation = block if pool_first else block[::-1]
        if type(activation) not in FAST_ACTIVATIONS:
            return f"conv activation {type(activation).__name__}"
        if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.bias is None:
            return "a convolution with stride, dilation, groups or no bias"
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str) or len(set(conv.padding)) > 1:
            return "a convolution's padding"
        window = (pool.kernel_size,) if isinstance(pool.kernel_size, int) else tuple(pool.kernel_size)
        if len(set(conv.kernel_size)) > 1 or len(set(window)) > 1:
            return "a kernel or pool window that is not square"
        if pool.stride != pool.kernel_size or pool.padding or pool.dilation != 1 or pool.ceil_mode:
            return "a max-pooling with stride, padding, dilation or ceil_mode"
        blocks.append(ConvBlock(conv, pool, FAST_ACTIVATIONS[type(activation)], pool_first))
    return blocks


def conv_fast_path_refusal(
    features: nn.Sequential,
    fc_layers: list[nn.Linear],
    activation: nn.Module,
    cost: Cost,
    optimizer: torch.optim.Optimizer,
    *,
    world_size: int = 1,
    precision: str | None = None,
) -> str | None:
    """Why ``FastConvBackprop`` would not reproduce autograd and ``optimizer.step()`` for this CNN; ``None`` when
    it does: conv-pool blocks of ``FAST_ACTIVATIONS`` (no BatchNorm), and what ``sgd_refusal`` asks."""
    blocks = conv_blocks(features)
    if isinstance(blocks, str):
        return blocks
    if len(fc_layers) > 1 and type(activation) not in FAST_ACTIVATIONS:
        return f"hidden activation {type(activation).__name__}"
    parameters = [p for block in blocks for p in (block.conv.weight, block.conv.bias)]
    parameters += [p for layer in fc_layers for p in (layer.weight, layer.bias)]
    return sgd_refusal(parameters, cost, optimizer, world_size=world_size, precision=precision)


class FastConvBackprop:
    """One SGD update of ``nndl.models.CNN`` on a mini-batch, in place: the equations of this module's docstring
    for the conv-pool layers, ``FastBackprop`` for the fully connected ones (and their dropout), and each
    parameter updated as ``torch.optim.SGD.step`` does (``sgd_step``; without momentum, BP4 and the update of w
    are one ``addmm_``: ``weight_step``). No autograd graph, no optimizer step. ``expose_gradients`` makes the latest
    mini-batch's ∂C/∂w, ∂C/∂b every parameter's ``.grad`` (for the gradient histograms). Use where
    ``conv_fast_path_refusal`` returns ``None``."""

    SUMMARY = "backpropagation through the conv-pool layers and the SGD update in place, no autograd"

    def __init__(
        self,
        features: nn.Sequential,
        fc_layers: list[nn.Linear],
        activation: nn.Module,
        cost: Cost,
        optimizer: torch.optim.Optimizer,
        dropout: float = 0.0,
    ) -> None:
        blocks = conv_blocks(features)
        assert not isinstance(blocks, str), blocks
        self.blocks = blocks
        # the fully connected layers, dropout on each one's inputs as network3.py: ∂C/∂(the last maps) comes back
        self.fc = FastBackprop(
            fc_layers, activation, cost, optimizer, input_error=True, dropout=dropout, drop_input=True
        )
        group_of = {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}
        self.groups = [(group_of[id(b.conv.weight)], group_of[id(b.conv.bias)]) for b in blocks]
        self.grads = [(torch.zeros_like(b.conv.weight), torch.zeros_like(b.conv.bias)) for b in blocks]
        self.last: list[tuple[Tensor, ...] | None] = [None] * len(blocks)  # δ^l, cols, errors of the latest update

    @torch.no_grad()
    def update(self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
        """One update on the mini-batch (x, y); returns z^L of the mini-batch before the update."""
        m = len(y)
        a = x.permute(0, 2, 3, 1)  # a^0 (m, 28, 28, 1): NHWC
        saved = []
        for block in self.blocks:
            w, b = block.conv.weight, block.conv.bias
            weights = block.matrix(w)
            padded = F.pad(a, (0, 0, *[block.padding] * 4)) if block.padding else a  # zero-padding of H and W
            cols = block.im2col(padded, block.channels_last(w))
            oh, ow = padded.shape[1] - block.k + 1, padded.shape[2] - block.k + 1
            z = torch.addmm(b, cols, weights.t(), out=block.buffer("z", (len(cols), len(w)), cols))  # z = w * a + b
            z = z.view(m, oh, ow, -1).permute(0, 3, 1, 2)  # (m, c, h, w), channels-last
            if block.pool_first:
                pooled, where = block.max_pool(z)
                out = activate(block.activation, pooled)
            else:
                activate(block.activation, z)  # now σ(z)
                out, where = block.max_pool(z)
            saved.append((a, cols, z, where, out))
            a = out.permute(0, 2, 3, 1)
        features = saved[-1][-1]
        z_out = self.fc.update(features.contiguous().view(m, -1), y, optimizer)  # flattened as nn.Flatten: (c, h, w)
        grad = self.fc.input_error.view(features.shape)  # ∂C/∂(the last pooled maps)
        groups = optimizer.param_groups
        for l in range(len(self.blocks) - 1, -1, -1):
            block, (a, cols, z, where, out) = self.blocks[l], saved[l]
            w, b = block.conv.weight, block.conv.bias
            nabla_w, nabla_b = self.grads[l]
            # δ = unpool(∂C/∂a ⊙ σ'): BP2 at the pooled positions, with each window's winner's σ', from its σ(z),
            # which is the pooled output (pooled σ(z), or σ of pooled z), then routed to the winners (the other
            # positions' δ is 0); ``errors`` are δ at the pooled positions, and their sum is ∂C/∂b (BP3)
            errors = backward_activation(block.activation, grad, out)
            delta = block.unpool(errors, z, where)
            if l:  # ∂C/∂a^{l−1}: δ convolved in full with the flipped kernels, before w moves
                below = a.permute(0, 3, 1, 2)
                padding = [block.padding, block.padding]
                grad = torch.ops.aten.convolution_backward(
                    delta, below, w, None, [1, 1], padding, [1, 1], False, [0, 0], 1, [True, False, False]
                )[0]
            delta = delta.permute(0, 2, 3, 1).reshape(-1, delta.shape[1])  # (m·oh·ow, out)
            weight_step(optimizer, groups[self.groups[l][0]], w, delta, cols, nabla_w, block.matrix)  # BP4, update
            bias_gradient = torch.sum(errors, (0, 2, 3), out=nabla_b)  # BP3, summed over the positions
            sgd_step(optimizer, groups[self.groups[l][1]], b, bias_gradient)
            self.last[l] = (delta, cols, errors)
        return z_out

    def expose_gradients(self) -> None:
        """Every parameter's ``.grad``: the latest mini-batch's ∂C/∂w, ∂C/∂b (again: C without L2)."""
        self.fc.expose_gradients()
        for block, (nabla_w, nabla_b), last in zip(self.blocks, self.grads, self.last, strict=True):
            if last is not None:
                delta, cols, errors = last
                torch.mm(delta.t(), cols, out=block.matrix(nabla_w))
                torch.sum(errors, (0, 2, 3), out=nabla_b)
            block.conv.weight.grad, block.conv.bias.grad = nabla_w, nabla_b
