"""Evaluation of a run: attribute discovery, transfer, identity and realism (DESIGN.md §1).

One module per metric family, each returning a typed result (a frozen dataclass whose
`to_json()` is its section of metrics.json): `discovery`, `transfer` (with `side_effects`),
`identity`, `realism` (with `droplets` and `blotches`), `beyond` (strength curve, reference groups,
combined attributes) and `clusters` (the per-cluster table). `metrics.Metrics` holds them
all; `summary.format_summary` and `html_report.render` read it section by section.
`pipeline.evaluate` / `run_evaluation` read the run's artifacts (`labelled`, `generator`),
translate held-out images, call each metric and write `WORKDIR/eval/metrics.json` and
`report.html`. Labels are used here only, never for training.
"""
