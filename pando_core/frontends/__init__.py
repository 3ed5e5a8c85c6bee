"""The front-ends: how a user drives the agent.

`interactive` (bare ``pando`` in a terminal), `run` (``pando run``: one prompt, no questions
asked) and `goal` (``pando goal``: turns until an objective is reached).
"""
