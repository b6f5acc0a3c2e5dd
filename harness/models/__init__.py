"""Architectures of the two papers. Every builder takes a ``norm`` factory (harness.norms)."""

from harness.models.init import init_weights
from harness.models.linear import DeepLinear, deep_linear
from harness.models.mlp import MLP, mlp
from harness.models.resnet import CifarResNet, resnet_cifar
from harness.models.vgg import CifarVGG, vgg_cifar

__all__ = [
    "CifarResNet",
    "CifarVGG",
    "DeepLinear",
    "MLP",
    "deep_linear",
    "init_weights",
    "mlp",
    "resnet_cifar",
    "vgg_cifar",
]
