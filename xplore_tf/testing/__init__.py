"""Test doubles a developer runs: `python -m xplore_tf.testing.dev_server` answers TF Serving's
gRPC API for exported models where `tensorflow_model_server` is not installed."""
