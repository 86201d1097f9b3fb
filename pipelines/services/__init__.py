"""Services of the pipelines app: definitions and runs."""
