"""pando-evaluator: score finished sessions, choose prompt variants with UCB1, learn short rules."""
