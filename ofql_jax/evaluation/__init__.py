"""Acting in environments: the environment pool, the evaluator, acting records, the Policy and
videos.
"""
