"""Drift monitoring: the query log, the signals computed from it and from the registry, and the routing rule.

    querylog   what the query path appends (one JSON line per search) and how the monitor reads it back
    stats      the two-sample test on query embeddings (MMD with a permutation p-value, scipy)
    signals    the five signals: query drift, retrieval health, corpus change, answer quality, new data
    route      route(signals, history, thresholds) -> Decision: a pure function with an N-of-M window
    monitor    one check: compute, route, record in MLflow (the flow and `lorag drift` call it)
"""
