"""Seeing inside the model: pure NumPy views the app's panels and the CLI compute off the UI thread.

confusion   confusion matrix (counts, row-normalised), per-class accuracy, most confused pairs
mistakes    the test images the model gets wrong with the highest confidence (top-3 each)
units       every layer's activations, first-layer weights as diverging images, responsive units
health      gradient strength, dead units, train/validation gap, and plain-language hints
robustness  accuracy under noise, rotation, thicker and thinner strokes
drawing     LeCun's MNIST preprocessing of a drawing; reading ASCII art back into pixels

Nothing here imports Textual, and nothing mutates a model except ``health.gradient_strength``
(which fills ``model.grads``: pass a copy while a run trains it, see its docstring).
"""
