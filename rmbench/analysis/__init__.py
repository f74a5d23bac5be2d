"""What a team decides with results: paired comparisons, the regression gate, correlations across models."""
