"""Photos in, tf.data out: the records' schema and example protos, reading image files
safely, and the training input pipeline. Below it: chroma."""
