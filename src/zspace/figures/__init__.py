"""Plot functions: arrays or analysis results in, a matplotlib Figure out; they never write files."""
