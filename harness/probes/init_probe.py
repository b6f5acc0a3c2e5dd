"""One hooked forward/backward pass of a CIFAR ResNet at initialization (bjorck2018 §3).

Hooks capture, for every conv layer k (the paper's numbering, ``model.layer(k)``):

- the channel means and variances of its output, i.e. what BN measures, or would measure, in the
  norm slot after it (Fig. 3);
- the per-channel sum of ∂L/∂(norm-slot output), the gradient of the channel's bias or of BN's β
  (Fig. 19), and the channel means of that slot output, the activation before the ReLU (Fig. 18);
- its weight and weight gradient; for the Table 1 layers, its input and ∂L/∂OUTPUT, reduced to
  the Eq. 4 statistics (harness.probes.summands) while the pass runs.

Per residual block it records the variance of the residual branch and of the skip path, and for
chosen layers summaries of the pre-ReLU activations (Figs. 13/14). With ``mask_layer`` it also
back-propagates the output gradient one class at a time, the others zeroed (App. L), and keeps
the mean |kernel gradient| of that layer per class.

Everything returned is plain numpy data; the model is left as it was (BN running statistics are
updated by the training-mode forward, as in the paper's first training step).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.models.resnet import CifarResNet
from harness.accel import float32_probe
from harness.probes.summands import kernel_gradient, summand_statistics, table1_row


def norm_slots(model: CifarResNet) -> dict[int, nn.Module]:
    """Conv layer number → the norm slot right after it (BN, or an identity without BN)."""
    if not isinstance(model, CifarResNet):
        raise TypeError(f"norm slots are defined for CifarResNet, got {type(model).__name__}")
    slots = [model.bn1] + [bn for block in model.blocks for bn in (block.bn1, block.bn2)]
    return dict(zip(range(1, len(slots) + 1), slots))


def pre_relu_source(layer: int, depth: int) -> int:
    """The conv layer whose norm-slot output, after a ReLU, is the whole input of ``layer``.

    That holds for the second conv of each block (odd layers 3..6n+1): its input is
    ReLU(slot output of layer − 1). The first conv of a block sees the ReLU of a residual sum."""
    if not (3 <= layer <= depth - 1 and layer % 2 == 1):
        raise ValueError(f"layer {layer}: only the second conv of a block (odd layers 3..{depth - 1}) has a single pre-ReLU source")
    return layer - 1


@dataclasses.dataclass
class ActivationSummary:
    """Pre-ReLU activations (norm-slot output) of one layer, per channel over (b, x, y)."""

    positive_fraction: np.ndarray  # share of entries > 0
    mean: np.ndarray
    std: np.ndarray
    bimodality: np.ndarray  # Sarle's coefficient (skew² + 1) / kurtosis; > 5/9 suggests bimodality
    samples: np.ndarray  # (channels shown, values) for histograms


@dataclasses.dataclass
class InitPass:
    """What one forward/backward pass at initialization measured (numpy, float64 summaries)."""

    loss: float
    logits: np.ndarray  # (B, classes)
    labels: np.ndarray  # (B,)
    channel_mean: dict[int, np.ndarray]  # conv output, per channel
    channel_var: dict[int, np.ndarray]
    slot_mean: dict[int, np.ndarray]  # norm-slot output (pre-ReLU), per channel
    channel_grad: dict[int, np.ndarray]  # Σ_bxy ∂L/∂(slot output), per channel
    weight: dict[int, np.ndarray]
    weight_grad: dict[int, np.ndarray]
    table1: dict[int, dict[str, float]]
    activations: dict[int, ActivationSummary]
    branch_var: np.ndarray  # per block: residual branch, channel variance averaged over channels
    skip_var: np.ndarray  # per block: skip path
    class_grad: np.ndarray | None  # (classes,) mean |∂L/∂K| of mask_layer with one class's gradient kept

    @property
    def layers(self) -> list[int]:
        return sorted(self.channel_mean)

    def as_stored(self) -> dict:
        """Plain data the model cache stores (its entries load with ``weights_only``: tensors, not
        numpy arrays); :meth:`from_stored` gives back an equal pass."""
        return _to_tensors(dataclasses.asdict(self))

    @classmethod
    def from_stored(cls, stored: dict) -> InitPass:
        d = _to_numpy(stored)
        return cls(**{**d, "activations": {k: ActivationSummary(**v) for k, v in d["activations"].items()}})


def _to_tensors(value):
    """numpy arrays as tensors; a float64 array whose values are all float32 values (weights and
    gradients of a float32 network) is stored as float32, exactly, in half the bytes."""
    if isinstance(value, np.ndarray):
        single = value.astype(np.float32) if value.dtype == np.float64 else None
        return torch.from_numpy(np.ascontiguousarray(single if single is not None and np.array_equal(single, value) else value))
    if isinstance(value, dict):
        return {k: _to_tensors(v) for k, v in value.items()}
    return value


def _to_numpy(value):
    """Back from :func:`_to_tensors`: float32 tensors become float64 arrays again (the summaries' type)."""
    if isinstance(value, torch.Tensor):
        return value.numpy().astype(np.float64) if value.dtype == torch.float32 else value.numpy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def _bimodality(v: torch.Tensor) -> torch.Tensor:
    """Sarle's bimodality coefficient of each row of ``v`` (population moments)."""
    c = v - v.mean(1, keepdim=True)
    m2 = c.pow(2).mean(1).clamp_min(1e-30)
    skew = c.pow(3).mean(1) / m2.pow(1.5)
    kurt = c.pow(4).mean(1) / m2.pow(2)
    return (skew.pow(2) + 1) / kurt


def _summarize_activations(out: torch.Tensor, shown: int, max_samples: int, generator: torch.Generator) -> ActivationSummary:
    v = out.detach().double().transpose(0, 1).reshape(out.shape[1], -1)  # (channels, b·x·y)
    keep = torch.randperm(v.shape[1], generator=generator)[:max_samples]
    return ActivationSummary(
        positive_fraction=(v > 0).double().mean(1).cpu().numpy(), mean=v.mean(1).cpu().numpy(), std=v.std(1).cpu().numpy(),
        bimodality=_bimodality(v).cpu().numpy(), samples=v[:shown, keep.to(v.device)].cpu().numpy(),
    )


def probe_init(model: CifarResNet, x: torch.Tensor, y: torch.Tensor, *, table1_layers=(), activation_layers=(),
               mask_layer: int | None = None, shown_channels: int = 4, max_samples: int = 4096) -> InitPass:
    """Run the hooked forward/backward pass (training mode, mean cross-entropy over the batch)."""
    slots = norm_slots(model)
    for k in (*table1_layers, *activation_layers, *([mask_layer] if mask_layer is not None else [])):
        if k not in slots:
            raise ValueError(f"layer {k} is not a conv layer of this network (conv layers are 1..{len(slots)})")
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"need a batch of at least 2 images with one label each, got {tuple(x.shape)} and {tuple(y.shape)}")
    convs = {k: model.layer(k) for k in slots}
    rec: dict[str, dict] = {n: {} for n in ("mean", "var", "slot_mean", "channel_grad", "table1", "act", "branch", "skip")}
    kept: dict[str, torch.Tensor] = {}
    generator = torch.Generator().manual_seed(0)  # subsampling for histograms only
    handles, tensor_hooks = [], []  # module hooks; gradient hooks (off before the class-masked passes)

    def on_conv(k):
        def hook(module, inputs, out):
            # float32 reductions (pairwise sums on CPU): a float64 copy of every activation costs
            # more than the forward pass itself
            var, mean = torch.var_mean(out.detach(), (0, 2, 3), unbiased=False)
            rec["mean"][k], rec["var"][k] = mean.double().cpu().numpy(), var.double().cpu().numpy()
            if k in table1_layers:
                inp = inputs[0].detach()

                def on_grad(g, inp=inp):
                    stats = summand_statistics(module, inp, g.detach())
                    rec["table1"][k] = table1_row(stats, g.shape[0], g.shape[2] * g.shape[3])
                tensor_hooks.append(out.register_hook(on_grad))
            if k == mask_layer:
                kept["mask_in"], kept["mask_out"] = inputs[0].detach(), out
        return hook

    def on_slot(k):
        def hook(module, inputs, out):
            # an identity slot passes the conv output on unchanged: its mean is already recorded
            same = isinstance(module, nn.Identity)
            rec["slot_mean"][k] = rec["mean"][k] if same else out.detach().mean((0, 2, 3)).double().cpu().numpy()
            if k in activation_layers:
                rec["act"][k] = _summarize_activations(out, shown_channels, max_samples, generator)
            tensor_hooks.append(out.register_hook(
                lambda g: rec["channel_grad"].__setitem__(k, g.detach().sum((0, 2, 3)).double().cpu().numpy())))
        return hook

    def on_branch(i, kind):
        def hook(module, inputs, out):
            rec[kind][i] = float(out.detach().var((0, 2, 3), unbiased=False).double().mean())
        return hook

    try:
        for k, conv in convs.items():
            handles.append(conv.register_forward_hook(on_conv(k)))
            handles.append(slots[k].register_forward_hook(on_slot(k)))
        for i, block in enumerate(model.blocks):
            handles.append(block.bn2.register_forward_hook(on_branch(i, "branch")))
            handles.append(block.shortcut.register_forward_hook(on_branch(i, "skip")))
        model.train()
        model.zero_grad(set_to_none=True)
        with float32_probe():
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward(retain_graph=mask_layer is not None)
            for h in tensor_hooks:
                h.remove()
            class_grad = None
            if mask_layer is not None:
                per_class = class_masked_kernel_grads(convs[mask_layer], logits, y, kept["mask_in"], kept["mask_out"])
                class_grad = per_class.abs().double().mean((1, 2, 3, 4)).cpu().numpy()
    finally:
        for h in handles:
            h.remove()
    return InitPass(
        loss=float(loss.detach()), logits=logits.detach().double().cpu().numpy(), labels=y.cpu().numpy(),
        channel_mean=rec["mean"], channel_var=rec["var"], slot_mean=rec["slot_mean"], channel_grad=rec["channel_grad"],
        weight={k: c.weight.detach().double().cpu().numpy() for k, c in convs.items()},
        weight_grad={k: c.weight.grad.detach().double().cpu().numpy() for k, c in convs.items()},
        table1=rec["table1"], activations=rec["act"],
        branch_var=np.array([rec["branch"][i] for i in range(len(model.blocks))]),
        skip_var=np.array([rec["skip"][i] for i in range(len(model.blocks))]),
        class_grad=class_grad,
    )


def class_masked_cotangents(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂L/∂z for the mean cross-entropy, split by class: entry c keeps column c, zeroes the rest (App. L)."""
    delta = (torch.softmax(logits.detach(), 1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)) / logits.shape[0]
    eye = torch.eye(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return delta.unsqueeze(0) * eye.unsqueeze(1)  # (classes, B, classes)


def class_masked_kernel_grads(conv: nn.Conv2d, logits: torch.Tensor, y: torch.Tensor, inp: torch.Tensor,
                              out: torch.Tensor) -> torch.Tensor:
    """∂L/∂K of ``conv`` when only one class's output gradient is back-propagated: (classes, *K.shape).

    ``out`` is the conv's output in the graph of ``logits``, ``inp`` its input. Only the path from
    the logits down to ``out`` is differentiated (one vector-Jacobian product per class, no weight
    gradients of other layers); the kernel gradient is then Σ_bxy d of Eq. 4. The classes' kernel
    gradients sum to the ordinary one (back-propagation is linear in the output gradient)."""
    grads = []
    cotangents = class_masked_cotangents(logits, y)
    for c, cot in enumerate(cotangents):
        (g,) = torch.autograd.grad(logits, out, cot, retain_graph=c < len(cotangents) - 1)
        grads.append(kernel_gradient(conv, inp, g))
    return torch.stack(grads)
