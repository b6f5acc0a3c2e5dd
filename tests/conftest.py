"""Unit tests of harness/ — fast, CPU only. ``pytester`` runs the claims plugin in scratch projects."""

pytest_plugins = ["pytester"]
