"""Networks of the translation stage (DESIGN.md §3): generator, discriminator, layers."""

from __future__ import annotations

from xplore_tf.models.discriminator import Discriminator
from xplore_tf.models.generator import (
    CONDITION_MODES,
    HF_KERNEL_SIZE,
    OUTPUT_MODES,
    SKIP_MODES,
    UPSAMPLE_MODES,
    AsinBiasInitializer,
    AsinMlp,
    Decoder,
    Encoder,
    Generator,
    GeneratorOutput,
    condition_dim,
    condition_vector,
    split_affine_params,
)
from xplore_tf.models.layers import (
    AsinResidualBlock,
    AttributeSummaryInstanceNorm,
    ConcatSkip,
    GatedSkip,
    InstanceNormalization,
    NoiseInjection,
    ResidualBlock,
    Upsample,
    binomial_taps,
    high_frequency,
    masked_blend,
)

__all__ = [
    "CONDITION_MODES",
    "HF_KERNEL_SIZE",
    "OUTPUT_MODES",
    "SKIP_MODES",
    "UPSAMPLE_MODES",
    "AsinBiasInitializer",
    "AsinMlp",
    "AsinResidualBlock",
    "AttributeSummaryInstanceNorm",
    "ConcatSkip",
    "Decoder",
    "Discriminator",
    "Encoder",
    "GatedSkip",
    "Generator",
    "GeneratorOutput",
    "InstanceNormalization",
    "NoiseInjection",
    "ResidualBlock",
    "Upsample",
    "binomial_taps",
    "condition_dim",
    "condition_vector",
    "high_frequency",
    "masked_blend",
    "split_affine_params",
]
