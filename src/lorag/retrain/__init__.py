"""Behavior-track use cases, one call per step; the CLI, the Prefect flow and the DVC stages all call these.

    base_model.py   build the tiny demo base model (a no-op for a user's own model)
    examples.py     put the examples in place, snapshot them with DVC, validate them (GX suite, quarantine)
    train.py        pick the run folder (resume an unfinished run made from the same params and data), launch
                    training under accelerate and wait, read the result; record it in MLflow
    evaluate.py     held-out evaluation of the run's adapter against its base model
    register.py     register the adapter as the `challenger` version with its lineage
    run.py          train -> record [-> evaluate -> register] in one call (`lorag train`)
"""
