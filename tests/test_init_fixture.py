"""The init claims' lab (fixtures/init.py): what its timing note says."""

from fixtures.init import InitProbes


def test_the_timing_note_names_the_passes_made_or_says_all_were_served():
    probes = InitProbes(settings={"depth": 110}, data=None, device="cpu")
    assert probes.timing_note() == "Every hooked ResNet-110 pass was served from the model cache."
    probes.seconds[("bn", 0, 0)] = 2.5
    probes.seconds[("none", 1, 0)] = 1.0
    assert probes.timing_note() == "Hooked ResNet-110 passes so far took 3.5 s (bn/seed 0/batch 0: 2.5 s, none/seed 1/batch 0: 1.0 s)."
