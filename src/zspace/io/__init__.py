"""Small I/O helpers every wing may use: atomic writes, what zspace owns and may delete, resource limits."""
