"""Optimizer libraries run as dsxir sessions: each finished trial is committed.

Each integration is a module of its own, imported only when used, with its
own extra: :mod:`.optuna` (``[optuna]``) and :mod:`.dspy` (``[dspy]``).
"""
