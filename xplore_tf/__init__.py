"""xplore_tf: XploreGAN (CVPR 2020) in TensorFlow 2 / Keras 3.

Importing the package turns on TensorFlow's oneDNN CPU kernels unless the user chose
(`TF_ENABLE_ONEDNN_OPTS` already set): TensorFlow enables them by default only on CPUs with
AVX-512-class features, and on AVX2-only CPUs they make the training step markedly faster
(docs/experiments/2026-12-05-readme-measurements.md; tests/test_onednn.py checks that the numbers agree). It must
happen before TensorFlow is first imported, which every entry point does after this.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
