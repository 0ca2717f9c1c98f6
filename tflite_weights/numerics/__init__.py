"""The math on values and parameters: pure numpy over arrays and records.

* :mod:`.values` turns stored bytes into a tensor's values, by type kind
  (zero-copy views, packed sub-byte values, strings);
* :mod:`.quantization` holds the affine rule, its fit to a shape and
  dequantization; :mod:`.blockwise` the block-scaled schemes;
* :mod:`.sparsity` densifies sparse tensors; :mod:`.lut` decodes TFLite Micro's
  look-up-table compression; :mod:`.shuffled` the 4x16 shuffled FC layout;
* :mod:`.fixedpoint` computes the kernels' requantization multipliers.

Nothing here reads a file or imports the domain: callers pass arrays, type
entries (:mod:`tflite_weights.format.types`) and records.
"""
