"""The layers K-FAC preconditions, each seen as s = ā W̄ over rows of inputs ā = [a, 1].

- `Dense`: one row per sample, a its input.
- `Conv2D` (channels last, no groups): one row per sample and output position t,
  a_t the input patch under the kernel there (Grosse & Martens' KFC). With
  spatially uncorrelated output gradients the Fisher block of W̄ is
  Σ_t E[ā_t ā_tᵀ] ⊗ E[g_t g_tᵀ] ≈ A ⊗ G with A the mean of ā ā ᵀ over samples
  and positions and G = E[Σ_t g_t g_tᵀ], the per-sample sum over positions.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class DenseBlock:
    """A `keras.layers.Dense` layer as a K-FAC block.

    Args:
        layer: a built Dense layer with a bias.
    """

    def __init__(self, layer: keras.layers.Dense):
        self.layer = layer
        self.fan_in, self.fan_out = (int(d) for d in layer.kernel.shape)

    def forward(self, inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`(input rows [n, fan_in], pre-activations s)` of a call on `inputs`."""
        if inputs.shape.rank != 2:
            raise ValueError(f"K-FAC needs Dense layer {self.layer.name!r} to act on [batch, features] inputs; it "
                             f"got inputs of shape {inputs.shape}. Flatten them before the layer.")
        return inputs, tf.matmul(inputs, self.layer.kernel) + self.layer.bias

    @staticmethod
    def positions(pre_activation: tf.Tensor) -> int:
        """Rows per sample: 1."""
        return 1

    def gradient_rows(self, gradient: tf.Tensor) -> tf.Tensor:
        """∂/∂s as rows aligned with the input rows: `[n, fan_out]`."""
        return gradient

    def kernel_matrix(self, kernel: tf.Tensor) -> tf.Tensor:
        """A kernel-shaped tensor as the `[fan_in, fan_out]` matrix of the block."""
        return kernel

    def kernel_shaped(self, matrix: tf.Tensor) -> tf.Tensor:
        """The inverse of `kernel_matrix`."""
        return matrix


class Conv2DBlock(DenseBlock):
    """A `keras.layers.Conv2D` layer (channels last, one group) as a K-FAC block over its input patches.

    Args:
        layer: a built Conv2D layer with a bias.
    """

    def __init__(self, layer: keras.layers.Conv2D):
        self.layer = layer
        height, width, channels, self.fan_out = (int(d) for d in layer.kernel.shape)
        self.fan_in = height * width * channels
        self.sizes = [1, height, width, 1]

    def forward(self, inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`(patch rows [n·positions, kh·kw·c_in], pre-activations s [n, h', w', c_out])` of a call."""
        layer = self.layer
        padding = layer.padding.upper()
        pre_activation = tf.nn.convolution(inputs, layer.kernel, strides=layer.strides, padding=padding,
                                           dilations=layer.dilation_rate) + layer.bias
        patches = tf.image.extract_patches(inputs, sizes=self.sizes, strides=[1, *layer.strides, 1],
                                           rates=[1, *layer.dilation_rate, 1], padding=padding)
        return tf.reshape(patches, [-1, self.fan_in]), pre_activation

    @staticmethod
    def positions(pre_activation: tf.Tensor) -> int:
        """Rows per sample: the output positions h'·w'."""
        return int(pre_activation.shape[1]) * int(pre_activation.shape[2])

    def gradient_rows(self, gradient: tf.Tensor) -> tf.Tensor:
        """∂/∂s `[n, h', w', c_out]` as rows `[n·h'·w', c_out]`, aligned with the patch rows."""
        return tf.reshape(gradient, [-1, self.fan_out])

    def kernel_matrix(self, kernel: tf.Tensor) -> tf.Tensor:
        """`[kh, kw, c_in, c_out]` as `[kh·kw·c_in, c_out]`, rows in the patches' order."""
        return tf.reshape(kernel, [self.fan_in, self.fan_out])

    def kernel_shaped(self, matrix: tf.Tensor) -> tf.Tensor:
        """The inverse of `kernel_matrix`."""
        return tf.reshape(matrix, self.layer.kernel.shape)


def block_for(layer) -> DenseBlock:
    """The K-FAC block of a layer.

    Raises:
        ValueError: naming a layer K-FAC cannot precondition, and why.
    """
    kind = type(layer)
    if kind is not keras.layers.Dense and kind is not keras.layers.Conv2D:
        raise ValueError(
            f"KFAC can only precondition keras.layers.Dense and Conv2D layers; got {kind.__name__} "
            f"({getattr(layer, 'name', layer)!r}). Register only those; other variables are updated with their "
            f"plain gradient."
        )
    if not layer.built or layer.bias is None or getattr(layer, "lora_enabled", False) \
            or getattr(layer, "quantization_mode", None):
        raise ValueError(f"KFAC needs built {kind.__name__} layers with a bias and without LoRA or quantisation; "
                         f"{layer.name!r} is not one (use_bias=True makes one).")
    if kind is keras.layers.Conv2D:
        if layer.data_format != "channels_last" or layer.groups != 1:
            raise ValueError(f"KFAC needs Conv2D layers with data_format='channels_last' and groups=1; "
                             f"{layer.name!r} has {layer.data_format!r} and groups={layer.groups}.")
        return Conv2DBlock(layer)
    return DenseBlock(layer)
