"""Using a trained model: the exported graph (all pre- and post-processing in the
SavedModel), the Python Colorizer, precision, TF Serving's REST rules, servables,
batching, and the server's web pages. Below it: chroma, data, modeling."""
