"""Decide and protect: countermeasure actions, their human or policy decision, and enforcement drivers."""
