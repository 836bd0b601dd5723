"""One spec module per cause (rule, texts, report content), listed in order in `registry.py`.

`Cause` and `Diagnosis` live in `diagnosis/verdict.py` and are re-exported here for the callers that name the
verdict through this package.
"""

from collector.diagnosis.verdict import Cause, Diagnosis

__all__ = ["Cause", "Diagnosis"]
