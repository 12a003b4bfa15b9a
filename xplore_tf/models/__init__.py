"""Networks of the translation stage (DESIGN.md §3): generator, discriminator, layers."""

from __future__ import annotations

from xplore_tf.models.discriminator import Discriminator
from xplore_tf.models.generator import (
    CONDITION_MODES,
    UPSAMPLE_MODES,
    AsinBiasInitializer,
    AsinMlp,
    Decoder,
    Encoder,
    Generator,
    condition_dim,
    condition_vector,
    split_affine_params,
)
from xplore_tf.models.layers import (
    AsinResidualBlock,
    AttributeSummaryInstanceNorm,
    InstanceNormalization,
    NoiseInjection,
    ResidualBlock,
    Upsample,
)

__all__ = [
    "CONDITION_MODES",
    "UPSAMPLE_MODES",
    "AsinBiasInitializer",
    "AsinMlp",
    "AsinResidualBlock",
    "AttributeSummaryInstanceNorm",
    "Decoder",
    "Discriminator",
    "Encoder",
    "Generator",
    "InstanceNormalization",
    "NoiseInjection",
    "ResidualBlock",
    "Upsample",
    "condition_dim",
    "condition_vector",
    "split_affine_params",
]
