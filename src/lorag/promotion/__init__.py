"""Review and promotion of registered adapter versions: from `challenger` to `champion` and back, audited.

    gates.py          a pure decide() over the evaluation's metrics, with thresholds from params (fail closed)
    review.py         a version beside the champion; the gate decision recorded once per evidence
    approvals.py      the rules every approval obeys (approvers, four eyes, superseded, override)
    manifest.py       the release manifest and its required links
    index_release.py  the index half of a release: frozen at promotion, restored by rollback --index
    promote.py        approve / reject / alias moves, each recorded in the ledger
    rollback.py       champion back to the previous release, verified
    ledger.py         audit events and the questions asked of them (lorag.tracking.audit stores them in MLflow)
    resume.py         find and resume the retrain flow run paused for a version (Prefect REST, no prefect import)
"""
