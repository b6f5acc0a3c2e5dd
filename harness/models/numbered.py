"""Layer numbering as in bjorck2018: weight layers counted from the input, 1-based, fc last."""

from __future__ import annotations

from torch import nn


class NumberedLayers:
    """Mixin: ``layer(k)`` returns the k-th conv/linear layer, ``layer_numbers()`` all numbers."""

    def numbered_layers(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    def layer(self, number: int) -> nn.Module:
        layers = self.numbered_layers()
        if not 1 <= number <= len(layers):
            raise IndexError(f"layer {number} does not exist: this network has layers 1..{len(layers)}")
        return layers[number - 1]

    def layer_numbers(self) -> range:
        return range(1, len(self.numbered_layers()) + 1)
