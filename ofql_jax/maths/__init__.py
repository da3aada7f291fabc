"""The maths, pure functions and Flax modules: networks, MeanFlow, diffusion, flow matching,
critics, candidate selection and diagnostics.
"""
