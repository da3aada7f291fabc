"""The ground floor: errors, array types, paths, the paper's task table, checkpoints, stop
requests, locks and --help text. Imports nothing else of ofql_jax.
"""
