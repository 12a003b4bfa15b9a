"""Names shared by the exported SavedModel and its clients: pure Python, nothing else.

`xplore_tf/export_lib.py` builds the signatures with these names and `serving/client.py`
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
SIGNATURES = (SERVING_DEFAULT, TRANSLATE_BYTES, CLUSTERS, CLUSTERS_BATCHED)

# Input and output keys (`PredictRequest.inputs` / `PredictResponse.outputs`).
IMAGE = "image"  # uint8 [N,H,W,3] in, uint8 [N,S,S,3] out
IMAGE_BYTES = "image_bytes"  # encoded images in, PNG out
CLUSTER_ID = "cluster_id"  # int32 [N] target clusters in; int32 [k] out of `clusters`
SIZE = "size"  # int64 [k]: members of each cluster
NAME = "name"  # string [k]: from cluster_names.json, "" when unnamed
ROWS = "rows"  # int32 [N] into `clusters_batched`: one output row each, values ignored

# Output format of `translate_bytes`.
OUTPUT_FORMAT = "png"
