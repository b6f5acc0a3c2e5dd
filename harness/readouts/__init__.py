"""Claims' decisions as plain functions: one module per claims family.

A readout takes a claim's measurements (per-seed statistics, the results of runs) and its
thresholds (``harness.claimkit.registry.Thresholds``, the numbers of the claim's YAML ``thresholds``) and
returns a :class:`harness.claimkit.evidence.Readout`: the values to record, the conditions of the threshold
over the seeds, and a one-line summary. The claim test gathers the measurements, draws the
figures, records the readout and hands its conditions to ``verdict.decide``; the unit tests
(``tests/test_readouts_*.py``) call the same functions on hand-made measurements, including ones
that must not hold (BN replaced by the identity). No readout holds a threshold of its own: every
number it compares with comes from ``thresholds``.
"""

from harness.claimkit.evidence import Readout

__all__ = ["Readout", "paper_num"]


def paper_num(x: float) -> str:
    """A number as the papers write it, for condition names and summaries: 0.1, 0.003, 100, 1e-4,
    1e-8, 1e3 (no zero-padded exponent)."""
    if x != 0 and not 1e-3 <= abs(x) < 1e3:
        mantissa, exponent = f"{x:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{x:g}"
