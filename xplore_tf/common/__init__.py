"""The bottom layer: what the pipeline's stages and the serving client share.

The one image decoder (`pixels`), the SavedModel's signature and tensor names
(`signatures`), face detection, alignment and paste-back (`faces`), the conditions beyond
fixed clusters (`beyond_clusters`) and TF Serving's Predict API from numpy
(`predict_client`). Modules here import numpy, Pillow, gRPC and TF Serving's protos, and
nothing of xplore_tf above this package.
"""
