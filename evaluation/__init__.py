"""Scoring: predictions against references, per task family (metrics/), a prediction
file's report (evaluate.py), base vs fine-tuned (compare.py, forgetting.py).

Depends only on the core (converters/): training's decoded eval and `ocrsft eval` score
with the same code."""
