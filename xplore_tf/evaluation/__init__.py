"""Evaluation of a run: attribute discovery, transfer, identity and realism (DESIGN.md §1).

Pure metric functions take numpy arrays (`transfer`, `identity`, `realism`);
`pipeline.run_evaluation` reads the run's artifacts, translates held-out images and
assembles `WORKDIR/eval/metrics.json` and `report.html` (`html_report`).
Labels are used here only, never for training.
"""
