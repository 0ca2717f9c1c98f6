"""What the tests build and check with: independent of the package under test.

* :mod:`.builders`: synthetic models written with the schema's generated object API;
* :mod:`.hostile`: small files that claim much (shared tables, shared vectors);
* :mod:`.oracle`: an independent reader (the generated bindings);
* :mod:`.fuzzing`: the mutator, the exercise of every public member, the cost bound;
* :mod:`.paths`: where the fixtures and the shared corpus are.

Scripts use it too: run them as modules from the repository's root
(``python -m scripts.bench``).
"""
