"""bnclaims harness: models, norms, data, training, probes, registry and report.

Everything that is not a test lives here; tests under ``claims/`` and ``tests/`` import it.
"""

__version__ = "0.1.0"
