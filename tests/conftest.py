"""Unit tests of harness/ — fast, CPU only. ``pytester`` runs the claims plugin in scratch projects."""

pytest_plugins = ["pytester"]

# a claims suite of its own (on the claims machinery alone), run in a scratch copy by test_toy_family.py
collect_ignore = ["toy_claims"]
