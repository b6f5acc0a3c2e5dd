"""The claims machinery: a paper's claims as data, judged from seeded measurements, and reported.

Nothing here knows about batch normalization, neural networks or torch (``tests/test_layering.py``
checks it): a suite of claims about any subject builds on it. Its parts, from the bottom up:

- ``settings``: typed settings classes for a claims family's YAML;
- ``evidence``: decision rules from seeds, with their error rates; ``vocabulary``: the verdicts;
- ``registry``: the claims files and the expected-verdicts file;
- ``verdicts``: a claim's recorder (measurements, figures, notes, the verdict);
- ``report``: the report store, its HTML, comparisons and the verdict history;
- ``plugin``: the pytest plugin that runs claim tests and writes the report. What a suite adds
  (its devices, data, paper titles, options and checks) reaches it through the plugin's hooks
  (``harness.claimkit.plugin.hookspec``).
"""
