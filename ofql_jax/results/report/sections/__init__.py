"""The report's sections: importing a module registers its sections (``registry.section``).

A new section, or a new suite group, is one module here and one line below.
"""

from ofql_jax.results.report.sections import (  # noqa: F401 (importing registers them)
    ablation,
    aggregates,
    cost,
    curves,
    eta,
    final,
    flow_ratio,
    header,
    health,
    problems,
)
