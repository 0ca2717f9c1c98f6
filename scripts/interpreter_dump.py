#!/usr/bin/env python3
"""Record what the LiteRT interpreter reports about a .tflite file.

    python scripts/interpreter_dump.py MODEL OUT_JSON OUT_NPZ [--crashed ...] [--no-allocate]

The implementation is ``tflite_weights/_interpreter_dump.py`` (the module
``tflite_weights.testing`` runs for live comparisons); this script loads it by
path, without importing the reader, so that the goldens it writes stay an
independent reference.  See that module's docstring for the output format.
"""

import importlib.util
import os
import sys

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                     "tflite_weights", "_interpreter_dump.py")
_spec = importlib.util.spec_from_file_location("_interpreter_dump", _PATH)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

dump = _module.dump
main = _module.main
progress_path = _module.progress_path
run_dump = _module.run_dump
write_npz = _module.write_npz

if __name__ == "__main__":
    sys.exit(main())
