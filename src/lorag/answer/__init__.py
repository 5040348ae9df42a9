"""Answers with citations: the one prompt / context / cited-answer format (format.py) shared by training,
evaluation, validation and retrieval."""
