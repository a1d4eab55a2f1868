"""The networks and what they are trained against: ColorUNet and the EfficientNet-Lite
colorizer (with the ImageNet weights' reader), losses, training metrics, the scene
classifier. Below it: chroma, data."""
