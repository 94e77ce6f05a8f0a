"""Backtests: replay real past elections through the projection and call code, and score them."""
