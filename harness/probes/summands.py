"""The summands of a conv kernel's gradient (bjorck2018 Eq. 4) and the statistics of Table 1.

For a conv weight K(co, ci, i, j) the gradient is Σ_{b,x,y} d^{bxy}_{co ci ij} with

    d^{bxy}_{co ci ij} = ∂L/∂OUTPUT(b, co, x, y) · INPUT(b, ci, x+i, y+j).

Table 1 compares ways of putting the absolute value inside or outside these sums. All of them
come from the captured layer input and output gradient without a loop over b, x, y: ``unfold``
lays out INPUT(b, ci, x+i, y+j) as a (b, ci·i·j, xy) tensor, and each statistic is one einsum.
Computed in float32 with TF32 off (``harness.accel.float32_probe``; TF32 would round the products
to 10 mantissa bits).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from harness.accel import float32_probe

# Table 1's columns, in the paper's order, plus the literal reading of the last header.
STATISTICS = {
    "sum_bxy_abs": "Σ_bxy |d|",
    "sum_b_abs_sum_xy": "Σ_b |Σ_xy d|",
    "sum_xy_abs_sum_b": "Σ_xy |Σ_b d|",
    "abs_sum_bxy": "|Σ_bxy d|",
    "sum_xy_abs_sum_bij": "Σ_xy |Σ_bij d| / (i·j)",
}


def _check(conv: nn.Conv2d, inp: torch.Tensor, grad_out: torch.Tensor) -> None:
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"expected an nn.Conv2d, got {type(conv).__name__}")
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("Eq. 4 summands need a plain conv: groups 1, numeric zero padding")
    if inp.dim() != 4 or grad_out.dim() != 4:
        raise ValueError(f"INPUT and ∂L/∂OUTPUT must be (B, C, H, W); got {tuple(inp.shape)} and {tuple(grad_out.shape)}")
    if inp.shape[1] != conv.in_channels or grad_out.shape[1] != conv.out_channels or inp.shape[0] != grad_out.shape[0]:
        raise ValueError(f"shapes {tuple(inp.shape)} → {tuple(grad_out.shape)} do not fit {conv}")
    if inp.dtype != torch.float32 or grad_out.dtype != torch.float32:
        raise ValueError(f"Table 1 statistics are computed in float32; got {inp.dtype} and {grad_out.dtype}")


def kernel_gradient(conv: nn.Conv2d, inp: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """Σ_bxy d^{bxy}: the weight gradient of ``conv`` for the output gradient ``grad_out``."""
    _check(conv, inp, grad_out)
    with float32_probe():
        u = F.unfold(inp, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
        return torch.einsum("bol,bkl->ok", grad_out.reshape(*grad_out.shape[:2], -1), u).reshape(conv.weight.shape)


def summand_statistics(conv: nn.Conv2d, inp: torch.Tensor, grad_out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-parameter Table 1 statistics of ``conv`` from its INPUT and ∂L/∂OUTPUT.

    Returns tensors of the kernel's shape (co, ci, i, j), except ``sum_xy_abs_sum_bij`` which has
    one value per (co, ci) (it sums over i, j inside the absolute value), divided by i·j so that
    it is on the per-parameter scale. ``abs_sum_bxy`` is |∂L/∂K|, autograd's weight gradient.
    """
    _check(conv, inp, grad_out)
    b, co = grad_out.shape[:2]
    kh, kw = conv.kernel_size
    with float32_probe():
        # U[b, (ci, i, j), l] = INPUT(b, ci, x+i, y+j) at output position l = (x, y)
        u = F.unfold(inp, conv.kernel_size, dilation=conv.dilation, padding=conv.padding, stride=conv.stride)
        g = grad_out.reshape(b, co, -1)
        if u.shape[-1] != g.shape[-1]:
            raise ValueError(f"∂L/∂OUTPUT has {g.shape[-1]} positions, the conv of INPUT gives {u.shape[-1]}")
        shape = (co, conv.in_channels, kh, kw)
        # batched matmuls on contiguous position-major copies: einsum and strided bmm route
        # "bol,bkl->okl" through paths 5–50× slower on the CPU
        per_example = torch.bmm(g, u.transpose(1, 2))  # (b, co, ci·i·j): Σ_xy d, one per example
        g_pos = g.permute(2, 1, 0).contiguous()  # (xy, co, b)
        per_position = torch.bmm(g_pos, u.permute(2, 0, 1).contiguous())  # (xy, co, ci·i·j): Σ_b d
        box = u.reshape(b, conv.in_channels, kh * kw, -1).sum(2)  # Σ_ij INPUT(b, ci, x+i, y+j)
        stats = {
            "sum_bxy_abs": torch.einsum("bol,bkl->ok", g.abs(), u.abs()).reshape(shape),
            "sum_b_abs_sum_xy": per_example.abs().sum(0).reshape(shape),
            "sum_xy_abs_sum_b": per_position.abs().sum(0).reshape(shape),
            "abs_sum_bxy": per_example.sum(0).abs().reshape(shape),
            "sum_xy_abs_sum_bij": torch.bmm(g_pos, box.permute(2, 0, 1).contiguous()).abs().sum(0) / (kh * kw),
        }
    return stats


def table1_row(stats: Mapping[str, torch.Tensor], batch: int, positions: int) -> dict[str, float]:
    """Table 1's numbers: each statistic averaged over the kernel's parameters, times
    1 / (spatial positions · batch size), the paper's constant factor."""
    if batch < 1 or positions < 1:
        raise ValueError(f"batch and positions must be positive, got {batch} and {positions}")
    return {name: float(value.double().mean()) / (batch * positions) for name, value in stats.items()}
