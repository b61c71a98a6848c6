"""Hydra configs of the CurES entry point (cures_trainer.yaml), shipped as package data."""
