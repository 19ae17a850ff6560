"""Evaluation as the paper does it: box formats, answer parsing and scoring (issue 23)."""
