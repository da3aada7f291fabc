"""Training: the multi-seed trainer, the Experiment, sweeps, sharding, runtime settings, config
checks and loading a run.
"""
