"""Learned clustering on frozen features: SCAN's neighbour-consistency heads.

Van Gansbeke et al., "SCAN: Learning to Classify Images without Labels" (ECCV 2020), step 2.
k-means cuts the feature space into Voronoi cells around k means, so a rare attribute whose
faces sit in a thin region between common ones (grey hair, baldness) is split among the cells
of its neighbours. SCAN instead trains a classifier whose only supervision is that each image
and its nearest neighbours in the pretrained feature space get the same cluster:

    L = -1/|D| sum_i sum_{j in N_i} log <p(x_i), p(x_j)>  -  lambda * H(mean_i p(x_i))

p = softmax over k clusters, N_i = the K nearest neighbours of x_i, H = entropy of the mean
prediction (spreads the images over the clusters; without it everything collapses into one).
Several heads are trained at once from different initialisations and the one with the lowest
loss is kept (SCAN's label-free model selection).

What differs from the paper: SCAN fine-tunes its backbone with strong augmentations; here the
extractor stays frozen (the clustering stage must run in minutes on a CPU), so each head is a
small MLP on the cached features, and SCAN's step 3 (self-labelling) is left out.
Everything is in `keras.ops`, trained with `Model.fit`, so it runs on any Keras backend.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from absl import logging
from keras import ops

from xplore_tf.clustering import kmeans

_LOG_EPS = 1e-8  # inside log(): a zero dot product must not give -inf


def mine_neighbors(x: np.ndarray, num_neighbors: int) -> np.ndarray:
    """The `num_neighbors` nearest neighbours [N, K] int64 of each row of x [N, d] (Euclidean).

    A point is never its own neighbour. Exact search with faiss (`IndexFlatL2`).

    Raises:
        ValueError: num_neighbors < 1 or >= N.
    """
    import logging as std_logging

    std_logging.getLogger("faiss.loader").setLevel(std_logging.WARNING)
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    if not 1 <= num_neighbors < n:
        raise ValueError(f"--scan_neighbors={num_neighbors} must be in [1, {n - 1}] for {n} images")
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    _, found = index.search(x, num_neighbors + 1)
    out = np.empty((n, num_neighbors), np.int64)
    for i in range(n):
        row = found[i][found[i] != i]  # usually the first column; ties may move it
        out[i] = row[:num_neighbors]
    return out


def scan_loss(anchor_probs, neighbor_probs, *, entropy_weight: float):
    """SCAN's loss per head (eq. 2 of the paper).

    Args:
        anchor_probs: [B, H, k] cluster probabilities of B anchors under H heads.
        neighbor_probs: [B, H, k] the same for one mined neighbour of each anchor.
        entropy_weight: lambda, weight of the entropy of the mean prediction (SCAN: 5).

    Returns:
        (total [H], consistency [H], entropy [H]): consistency = -mean_b log <a_b, n_b>,
        entropy = -sum_c m_c log m_c with m = mean_b a_b (natural log),
        total = consistency - entropy_weight * entropy.
    """
    dots = ops.sum(anchor_probs * neighbor_probs, axis=-1)  # [B, H]
    consistency = -ops.mean(ops.log(dots + _LOG_EPS), axis=0)
    mean = ops.mean(anchor_probs, axis=0)  # [H, k]
    entropy = -ops.sum(mean * ops.log(mean + _LOG_EPS), axis=-1)
    return consistency - entropy_weight * entropy, consistency, entropy


@keras.saving.register_keras_serializable(package="xplore_tf")
class ClusteringHeads(keras.layers.Layer):
    """H independent heads: [N, d] features -> [N, H, k] cluster probabilities (softmax).

    Each head is Dense(hidden) -> ReLU -> Dense(k) (or one Dense(k) when hidden = 0), held as
    stacked kernels so all heads run as one batched matmul.

    Raises:
        ValueError: num_clusters < 2, heads < 1, hidden < 0, or an input that is not [N, d].
    """

    def __init__(self, num_clusters: int, *, heads: int = 1, hidden: int = 0, seed: int = 0, **kw):
        super().__init__(**kw)
        if num_clusters < 2 or heads < 1 or hidden < 0:
            raise ValueError(
                f"ClusteringHeads: need num_clusters >= 2, heads >= 1, hidden >= 0; got "
                f"{num_clusters}, {heads}, {hidden}"
            )
        self.num_clusters = int(num_clusters)
        self.heads = int(heads)
        self.hidden = int(hidden)
        self.seed = int(seed)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"ClusteringHeads expects [N, d] features, got {input_shape}")
        d, h, k = int(input_shape[-1]), self.heads, self.num_clusters
        init = keras.initializers.GlorotUniform(seed=self.seed)
        width = self.hidden or k
        self.kernel1 = self.add_weight(shape=(h, d, width), initializer=init, name="kernel1")
        self.bias1 = self.add_weight(shape=(h, width), initializer="zeros", name="bias1")
        if self.hidden:
            init2 = keras.initializers.GlorotUniform(seed=self.seed + 1)
            self.kernel2 = self.add_weight(shape=(h, width, k), initializer=init2, name="kernel2")
            self.bias2 = self.add_weight(shape=(h, k), initializer="zeros", name="bias2")

    def call(self, features):
        y = ops.einsum("nd,hdw->nhw", features, self.kernel1) + self.bias1
        if self.hidden:
            y = ops.einsum("nhw,hwk->nhk", ops.relu(y), self.kernel2) + self.bias2
        return ops.softmax(y, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.heads, self.num_clusters)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_clusters=self.num_clusters, heads=self.heads, hidden=self.hidden, seed=self.seed
        )
        return config


class _NeighbourConsistency(keras.Model):
    """Training wrapper: (anchor ids [B], neighbour ids [B]) -> probabilities [2, B, H, k]."""

    def __init__(self, features: np.ndarray, heads: ClusteringHeads, entropy_weight: float):
        super().__init__(name="neighbour_consistency")
        self.table = keras.Variable(features, trainable=False, name="features")
        self.clustering_heads = heads
        self.entropy_weight = float(entropy_weight)

    def call(self, inputs):
        a = self.clustering_heads(ops.take(self.table, inputs["anchor"], axis=0))
        n = self.clustering_heads(ops.take(self.table, inputs["neighbor"], axis=0))
        return ops.stack([a, n])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total, _, _ = scan_loss(y_pred[0], y_pred[1], entropy_weight=self.entropy_weight)
        return ops.sum(total)


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """The kept head's predictions and every head's final loss."""

    probs: np.ndarray  # [N, k] float32, cluster probabilities of the kept head
    labels: np.ndarray  # [N] int32, argmax of probs
    losses: np.ndarray  # [H] float32, final SCAN loss of each head on all neighbour pairs
    consistency: np.ndarray  # [H]
    entropy: np.ndarray  # [H]
    best_head: int


def train_scan(
    x: np.ndarray,
    num_clusters: int,
    *,
    num_neighbors: int = 20,
    entropy_weight: float = 5.0,
    heads: int = 5,
    hidden: int = 512,
    epochs: int = 50,
    batch_size: int = 512,
    learning_rate: float = 1e-3,
    seed: int = 0,
    neighbors: np.ndarray | None = None,
) -> ScanResult:
    """Trains `heads` SCAN heads on x [N, d] and keeps the one with the lowest loss.

    Each epoch pairs every image with one of its `num_neighbors` nearest neighbours drawn
    at random (SCAN's sampling); Adam with `learning_rate`, batches of `batch_size` pairs.
    `neighbors` [N, K] may be passed to skip mining. Deterministic for a seed on one machine.

    Raises:
        ValueError: fewer than 2 points per cluster, or a bad num_neighbors.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    if n < 2 * num_clusters:
        raise ValueError(f"SCAN: {n} images are too few for {num_clusters} clusters")
    if neighbors is None:
        neighbors = mine_neighbors(x, num_neighbors)
    rng = np.random.default_rng(seed)
    anchors = np.concatenate([rng.permutation(n) for _ in range(epochs)]).astype(np.int32)
    picks = rng.integers(neighbors.shape[1], size=len(anchors))
    pairs = {"anchor": anchors, "neighbor": neighbors[anchors, picks].astype(np.int32)}

    head = ClusteringHeads(num_clusters, heads=heads, hidden=hidden, seed=seed)
    model = _NeighbourConsistency(x, head, entropy_weight)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    # One pass over the pre-drawn pairs of every epoch (already shuffled per epoch).
    model.fit(pairs, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)

    probs = np.asarray(head(x))  # [N, H, k]
    losses, consistency, entropy = _full_loss(probs, neighbors, entropy_weight)
    best = int(np.argmin(losses))
    logging.info(
        "SCAN: %d heads, losses %s; kept head %d (consistency %.3f, entropy %.3f of max %.3f)",
        heads,
        np.array2string(losses, precision=3),
        best,
        consistency[best],
        entropy[best],
        np.log(num_clusters),
    )
    p = probs[:, best].astype(np.float32)
    return ScanResult(
        probs=p,
        labels=np.argmax(p, axis=1).astype(np.int32),
        losses=losses,
        consistency=consistency,
        entropy=entropy,
        best_head=best,
    )


def _full_loss(probs: np.ndarray, neighbors: np.ndarray, entropy_weight: float):
    """SCAN loss of each head [H] over every (anchor, neighbour) pair, in numpy."""
    probs = probs.astype(np.float64)
    dots = np.einsum("nhk,nmhk->nmh", probs, probs[neighbors])  # [N, K, H]
    consistency = -np.log(dots + _LOG_EPS).mean(axis=(0, 1))
    mean = probs.mean(axis=0)
    entropy = -(mean * np.log(mean + _LOG_EPS)).sum(axis=-1)
    total = consistency - entropy_weight * entropy
    return total.astype(np.float32), consistency.astype(np.float32), entropy.astype(np.float32)


def clustering_from_probs(
    x: np.ndarray,
    probs: np.ndarray,
    *,
    min_cluster_size: int = 2,
    min_std: float = kmeans.MIN_STD,
    objective: float = 0.0,
) -> kmeans.Clustering:
    """Pseudo-labels and statistics from a head's probabilities probs [N, k] over points x [N, d].

    Labels are the most probable cluster. Empty clusters are dropped; a cluster smaller than
    `min_cluster_size` or without spread is removed (the smallest first) and its members go
    to their most probable surviving cluster. Ids are then renumbered 0..k'-1 in the original
    order. Centroids, stds and distances are computed in x's space as for k-means.

    Raises:
        ValueError: no cluster survives.
    """
    x = np.asarray(x, np.float32)
    alive = np.ones(probs.shape[1], bool)
    merged = 0
    while True:
        masked = np.where(alive, probs, -1.0)
        labels = np.argmax(masked, axis=1)
        sizes = np.bincount(labels, minlength=probs.shape[1])
        alive &= sizes > 0
        ids = np.flatnonzero(alive)
        _, stds, sz = kmeans.cluster_stats(x, np.searchsorted(ids, labels), len(ids))
        bad = (sz < min_cluster_size) | (stds.mean(axis=1) < min_std)
        if not bad.any():
            break
        if bad.all():
            raise ValueError(
                f"every learned cluster is smaller than --min_cluster_size={min_cluster_size} "
                "or has zero spread"
            )
        drop = ids[int(np.argmin(np.where(bad, sz, np.iinfo(np.int64).max)))]
        alive[drop] = False
        merged += 1
    empty = probs.shape[1] - len(ids) - merged
    if empty or merged:
        logging.info(
            "learned clustering: %d of %d clusters used (%d empty, %d too small merged)",
            len(ids),
            probs.shape[1],
            empty,
            merged,
        )
    labels = np.searchsorted(ids, labels).astype(np.int32)
    means, stds, sizes = kmeans.cluster_stats(x, labels, len(ids))
    dists = np.linalg.norm(x - means[labels], axis=1).astype(np.float32)
    return kmeans.Clustering(
        labels=labels,
        distances=dists,
        centroids=means,
        stds=np.maximum(stds, min_std),
        sizes=sizes,
        merged=probs.shape[1] - len(ids),
        objective=float(objective),
    )


__all__ = [
    "ClusteringHeads",
    "ScanResult",
    "clustering_from_probs",
    "mine_neighbors",
    "scan_loss",
    "train_scan",
]
