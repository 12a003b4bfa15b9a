"""Names shared by the exported SavedModel and its clients: pure Python, nothing else.

`xplore_tf/export_lib.py` builds the signatures with these names and `serving/client.py`
(a separate deployable that never imports model code) sends requests with them, so the two
cannot drift apart and no client ever relies on auto-generated names such as `input_1`.

Signatures of an exported model (S = the model's resolution, k = number of clusters):

    serving_default   image uint8 [N,H,W,3] (any H, W), cluster_id int32 [N]
                      -> image uint8 [N,S,S,3]
    translate_bytes   image_bytes string [N] (JPEG/PNG/GIF/BMP), cluster_id int32 [N]
                      -> image_bytes string [N] (PNG)
    clusters          (no inputs)
                      -> cluster_id int32 [k], size int64 [k], name string [k]
"""

DEFAULT_MODEL_NAME = "xplore"

# Signature names (`model_spec.signature_name`).
SERVING_DEFAULT = "serving_default"  # == tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
TRANSLATE_BYTES = "translate_bytes"
CLUSTERS = "clusters"
SIGNATURES = (SERVING_DEFAULT, TRANSLATE_BYTES, CLUSTERS)

# Input and output keys (`PredictRequest.inputs` / `PredictResponse.outputs`).
IMAGE = "image"  # uint8 [N,H,W,3] in, uint8 [N,S,S,3] out
IMAGE_BYTES = "image_bytes"  # encoded images in, PNG out
CLUSTER_ID = "cluster_id"  # int32 [N] target clusters in; int32 [k] out of `clusters`
SIZE = "size"  # int64 [k]: members of each cluster
NAME = "name"  # string [k]: from cluster_names.json, "" when unnamed

# Output format of `translate_bytes`.
OUTPUT_FORMAT = "png"
