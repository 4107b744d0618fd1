"""Source that the model patch inserts into the target's model file.

Each module here is ordinary, importable Python with its own tests. The patch
reads the classes out of these files, adapts the few names that differ per
target and inserts them, so what the tests exercise is what the target gets.
"""
