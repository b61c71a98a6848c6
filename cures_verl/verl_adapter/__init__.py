"""The thin layer between CurES and verl: trainer overrides, batch sampler, entry point, Hydra config, pre-flight.

With CPU mode (:mod:`cures_verl.cpu`), the only part of cures_verl that imports verl (besides the experiments that
measure verl itself); ``tests/test_layout.py`` checks it.
"""
