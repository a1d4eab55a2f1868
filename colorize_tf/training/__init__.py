"""Training a model: TrainConfig, the trainer (records -> model -> fit), its resumable
state, callbacks and the multi-worker loop. Below it: chroma, data, modeling."""
