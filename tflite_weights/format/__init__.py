"""The file format, below any model object: bytes, schema, types and records.

* :mod:`.flatbuffer` owns the bytes: the only code that turns a position into a
  value, every read checked against the data first;
* :mod:`.schema` holds the schema's tables, unions and enums as data;
* :mod:`.types` is the TensorType table: everything the package knows of a type;
* :mod:`.records` decodes each table of the schema, in one place, into a small
  frozen record (one table at a time, or a whole vector of tensors at once);
* :mod:`.nested` decodes the other flatbuffers found inside models (conversion,
  support and compression metadata); :mod:`.archive` the zip appended to some;
* :mod:`.source` opens files: a read-only mapping, or a private copy.

Nothing here imports the domain (:mod:`tflite_weights.model`), and every
function takes bytes, positions and records, never a Model or a Tensor.
"""
