"""Names shared by the exported SavedModel and its clients: pure Python, nothing else.

`xplore_tf/export_module.py` builds the signatures with these names and `serving/client.py`
(a separate deployable that never imports model code) sends requests with them, so the two
cannot drift apart and no client ever relies on auto-generated names such as `input_1`.

Signatures of an exported model (S = the model's resolution, k = number of clusters):

    serving_default   image uint8 [N,H,W,3] (any H, W), cluster_id int32 [N]
                      -> image uint8 [N,S,S,3]
    translate_bytes   image_bytes string [N] (JPEG/PNG/GIF/BMP), cluster_id int32 [N]
                      -> image_bytes string [N] (PNG)
    clusters_batched  rows int32 [N] (values ignored; send [0])
                      -> cluster_id int32 [N,k], size int64 [N,k], name string [N,k]
                         (every row is the whole cluster list)
    clusters          (no inputs)
                      -> cluster_id int32 [k], size int64 [k], name string [k]

Beyond fixed clusters (docs/guide/beyond_clusters.md; C = the condition's width, 2d for `mean_std`):

    translate_strength   image_bytes string [N], cluster_id int32 [N], strength float32 [N]
                         -> image_bytes string [N] (PNG), source_cluster int32 [N]
    translate_mix        image_bytes string [N], cluster_weights float32 [N,k]
                         -> image_bytes string [N] (PNG), source_cluster int32 [N]
    reference_condition  reference_bytes string [N,M] (N groups of M images)
                         -> condition float32 [N,C], nearest_cluster int32 [N],
                            distance float32 [N], relative_distance float32 [N]
    translate_condition  image_bytes string [N], condition float32 [N,C]
                         -> image_bytes string [N] (PNG)
    mix_condition        image_bytes string [N], cluster_weights float32 [N,k],
                         keep_clusters float32 [N,k]
                         -> condition float32 [N,C], source_cluster int32 [N]
    shared_condition     image_bytes string [N], condition float32 [N,C] (a group's),
                         strength float32 [N]
                         -> condition float32 [N,C], source_cluster int32 [N]

At the input's own resolution (an aligned face of any size; P_i = the side of image i's
centre square, the part the model sees: min(H_i, W_i), at most the export's crop_size):

    translate_full            image_bytes string [N], cluster_weights float32 [N,k]
                              -> image_bytes string [N] (PNG, P_i x P_i),
                                 source_cluster int32 [N]
    translate_full_condition  image_bytes string [N], condition float32 [N,C]
                              -> image_bytes string [N] (PNG, P_i x P_i),
                                 source_cluster int32 [N]

They run the generator at S as the signatures above do and add its edit,
up(G(x_S, s_target) - G(x_S, s_src)), to the full-resolution square (xplore_tf/edit.py): what
the model does not change keeps the input's own pixels. A plain translation into cluster t
is the weight 1 on t, a strength alpha the weight alpha.

The strength and mix signatures condition on s_src + sum_i w_i (s_i - s_src), s_src being the
statistics of the input's nearest cluster, found in-graph (clustering extractor + PCA +
centroids); strength alpha into t is the weight alpha on t. Weights are >= 0, at most
MAX_STRENGTH each and in sum. `reference_condition` gives a group's statistics (its mean
and std in the clustering space) as a condition for `translate_condition`, and how far the
group lies from the training clusters (`relative_distance` > FAR_FROM_CLUSTERS: far).
`mix_condition` gives the condition `translate_mix` would use with the edit's part along
the clusters marked in `keep_clusters` (> 0) taken out at the same length
(`xplore_tf.clustering.space.keep_directions`): keeping the men's cluster keeps gender
while moving toward a cluster of blond women; feed it to `translate_condition` or
`translate_full_condition`. With no cluster kept it is the `translate_mix` condition.
`shared_condition` keeps each input's own statistics and moves them by what a group (its
`reference_condition`) shares beyond the clusters' centre, `strength` times a fixed length
(`xplore_tf.clustering.space.shared_conditions`): a group of blond men and women gives blond
hair without the group's gender mix; feed it to the same two signatures.
Under TF Serving's --enable_batching, concurrent `reference_condition` requests batch only
when their groups have the same M (inputs are concatenated along N, never padded).

`clusters_batched` exists because TF Serving's `--enable_batching` concatenates every input
of concurrent requests along dimension 0 and splits every output the same way: a signature
without inputs (`clusters`) is refused there ("Batching Run() must have at least one input
tensor"). `clusters` stays for servers without batching and for older clients.
"""

DEFAULT_MODEL_NAME = "xplore"

# Signature names (`model_spec.signature_name`).
SERVING_DEFAULT = "serving_default"  # == tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
TRANSLATE_BYTES = "translate_bytes"
CLUSTERS = "clusters"  # no inputs: not batchable (refused under --enable_batching)
CLUSTERS_BATCHED = "clusters_batched"  # the batchable cluster list
TRANSLATE_STRENGTH = "translate_strength"  # toward one cluster with a strength alpha
TRANSLATE_MIX = "translate_mix"  # toward several clusters with weights
REFERENCE_CONDITION = "reference_condition"  # a reference group's statistics
TRANSLATE_CONDITION = "translate_condition"  # toward any condition (e.g. a reference group's)
TRANSLATE_FULL = "translate_full"  # cluster weights, the edit at the input's own resolution
TRANSLATE_FULL_CONDITION = "translate_full_condition"  # a condition, at the input's resolution
MIX_CONDITION = "mix_condition"  # translate_mix's condition, kept clusters' directions out
SHARED_CONDITION = "shared_condition"  # each input moved by what a reference group shares
# Every export has these...
BASE_SIGNATURES = (SERVING_DEFAULT, TRANSLATE_BYTES, CLUSTERS, CLUSTERS_BATCHED)
# ...and these when the clustering extractor could be built at export time (the two that
# take a condition not for --condition=onehot models); the export's assets.extra/xplore_tf.json lists
# the signatures it has and, when some are missing, why.
BEYOND_SIGNATURES = (
    TRANSLATE_STRENGTH,
    TRANSLATE_MIX,
    REFERENCE_CONDITION,
    TRANSLATE_CONDITION,
    TRANSLATE_FULL,
    TRANSLATE_FULL_CONDITION,
    MIX_CONDITION,
    SHARED_CONDITION,
)
SIGNATURES = BASE_SIGNATURES + BEYOND_SIGNATURES

# Input and output keys (`PredictRequest.inputs` / `PredictResponse.outputs`).
IMAGE = "image"  # uint8 [N,H,W,3] in, uint8 [N,S,S,3] out
IMAGE_BYTES = "image_bytes"  # encoded images in, PNG out
CLUSTER_ID = "cluster_id"  # int32 [N] target clusters in; int32 [k] out of `clusters`
SIZE = "size"  # int64 [k]: members of each cluster
NAME = "name"  # string [k]: from cluster_names.json, "" when unnamed
ROWS = "rows"  # int32 [N] into `clusters_batched`: one output row each, values ignored
STRENGTH = "strength"  # float32 [N]: 0 = the input's own cluster, 1 = the target cluster
CLUSTER_WEIGHTS = "cluster_weights"  # float32 [N,k]: each input's weight per cluster
KEEP_CLUSTERS = "keep_clusters"  # float32 [N,k]: > 0 on clusters whose direction is kept
SOURCE_CLUSTER = "source_cluster"  # int32 [N] out: each input's nearest cluster (s_src)
REFERENCE_BYTES = "reference_bytes"  # string [N,M]: N groups of M encoded images
CONDITION = "condition"  # float32 [N,C]: generator conditions (cluster-statistics layout)
NEAREST_CLUSTER = "nearest_cluster"  # int32 [N]: the cluster a group lies deepest in
DISTANCE = "distance"  # float32 [N]: from the group's mean to that cluster's centroid
RELATIVE_DISTANCE = "relative_distance"  # float32 [N]: distance / that cluster's RMS radius

# Bounds. Strength (and every weight, and their sum) in [0, MAX_STRENGTH]: above 1 the
# condition extrapolates past the target, at 2 as far beyond it as the input's own cluster
# lies before it; the generator was trained on cluster statistics only, so farther is
# refused. A reference group whose relative_distance exceeds FAR_FROM_CLUSTERS lies outside
# the RMS radius of every training cluster (clients warn).
MAX_STRENGTH = 2.0
FAR_FROM_CLUSTERS = 1.0

# What resolution a translation comes back at (translate's and the client's
# --output_resolution): the input's own, with the model's edit carried to it (the `_full`
# signatures), or the model's S x S output.
INPUT_RESOLUTION = "input"
MODEL_RESOLUTION = "model"
OUTPUT_RESOLUTIONS = (INPUT_RESOLUTION, MODEL_RESOLUTION)

# gRPC message limits of the client and xplore_tf.testing.dev_server (both ways; TF Serving's own
# server accepts up to 2 GiB): a request carries encoded images up to REQUEST_IMAGE_BYTES in
# all, split into several requests above that; one image larger than IMAGE_BYTES_LIMIT even
# as PNG cannot be sent.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
REQUEST_IMAGE_BYTES = 64 * 1024 * 1024
IMAGE_BYTES_LIMIT = MAX_MESSAGE_BYTES // 2  # room for the answer, as large at full resolution

# Output format of `translate_bytes`.
OUTPUT_FORMAT = "png"
