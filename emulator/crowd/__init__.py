"""The emulator's simulated crowd: scenarios, marked photos, worker behaviour, the simulator,
ground-truth scoring and the toloka.ini writer (see docs/emulator.md, "The simulated crowd"),
and the find_items kind of scenario: its catalogue, crowd, scoring and scripted client
(``find_items*.py``, ``catalogue.py``; docs/emulator.md, "The find_items scenario")."""
