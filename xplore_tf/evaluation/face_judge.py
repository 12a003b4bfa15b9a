"""The face judge: a transfer judge on dlib's face descriptors, not on the clustering space.

The main judge is a probe on the clustering extractor's features: the features the clusters
were made of and the generator was trained toward, so a translation can move them without
moving what a person sees (a tint that reads as "blond", a shade that reads as "male"). This
judge is the same logistic probe on dlib's 128-d face descriptor, the identity embedder on
real faces: a face-recognition ResNet that has never seen the clusters. Soft attributes such
as gender and age are linearly readable from face-recognition templates (Terhörst et al.,
"Beyond identity: what information is stored in biometric face templates?", IJCB 2020), which
makes it the judge of side effects on real faces: whether translating toward blond hair
changed who the face looks like, gender included.

It exists only where dlib is the identity embedder (`identity.choose_embedder`: real faces);
evaluation hands it identity's descriptors of the translations into each transfer cluster
instead of computing them twice.
"""

from __future__ import annotations

import numpy as np

from xplore_tf.evaluation import identity, transfer

NAME = "logistic probe on dlib face descriptors"
TITLE = "face judge"
ROLE = (
    "a face-recognition network that never saw the clusters, so a tint or shade the "
    "clustering features read as an attribute does not pass for it"
)


def face_judge(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    attributes,
    embedder: identity.IdentityEmbedder,
    *,
    seed: int,
) -> transfer.Judge:
    """The face judge fit on the training split: uint8 images [M, S, S, 3], labels bool
    [M, A] in `attributes` order; `embedder.embed` maps images to descriptors [M, D].
    Raises ValueError with fewer than 4 images."""
    if len(train_labels) < 4:
        raise ValueError(f"only {len(train_labels)} labelled images left to train the probe")
    probe = transfer.fit_logistic_probe(
        embedder.embed(train_images), train_labels, attributes=attributes, seed=seed
    )
    return transfer.Judge(
        f"{NAME} ({len(train_labels)} images)", probe.predict_proba, embedder.embed
    )


__all__ = ["NAME", "ROLE", "TITLE", "face_judge"]
