"""``python -m tflite_weights``: the command line (see :mod:`tflite_weights.cli`)."""

from .cli import main

raise SystemExit(main())
