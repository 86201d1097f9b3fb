"""Writes of the annotate app: projects, items, the assignment queue, annotations."""
