"""The verdicts, in one place: what a claim can be found to be, and which of those decide it.

Every module that names a verdict takes it from here (the decision rules, the recorder, the
report store, its HTML and the comparisons of runs).
"""

HOLDS, REFUTED, INCONCLUSIVE = "holds", "refuted", "inconclusive"  # what a measurement concludes
NOT_RUN, ERROR = "not run", "error"  # what pytest says of a claim test that concluded nothing
VERDICTS = (HOLDS, REFUTED, INCONCLUSIVE, NOT_RUN, ERROR)  # every verdict a record can carry, in the report's order
MEASURED = (HOLDS, REFUTED, INCONCLUSIVE)  # the verdicts that come from a measurement
DECIDED = (HOLDS, REFUTED)  # the verdicts that decide a claim, either way
EXPECTABLE = (REFUTED, INCONCLUSIVE)  # the verdicts the expected-verdicts file can record
