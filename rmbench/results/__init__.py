"""A run's results: the typed results.json contract, the run directory, and re-scoring from kept scores."""
