"""Results: the results.json schema, aggregation over seeds, TensorBoard/W&B writers, the paper's
numbers and the report.
"""
