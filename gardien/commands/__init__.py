"""Sub-commands that belong to no single part (config checking)."""
