"""The only part of cures_verl that imports verl: trainer, sampler and CPU-mode glue."""
