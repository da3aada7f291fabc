"""The report command: ``python -m ofql_jax.report SUITE_DIR`` (see ``ofql_jax.results.report``)."""

import sys

from ofql_jax.results.report import main

if __name__ == "__main__":
    sys.exit(main())
