"""Sweep operations: where a sweep of training runs stands (`rem status`) and what it will
cost (`rem plan`). Everything here only reads run folders, logs and configs."""
