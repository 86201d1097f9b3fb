"""Importing this module registers every built-in step."""
