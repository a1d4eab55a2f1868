"""Colour as classes: colour spaces (TF and numpy), the chroma grid and its bins,
decoding logits to chroma (annealed mean, confidence) and user hints. The bottom of
the data flow: imports no other subpackage."""
