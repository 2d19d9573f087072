"""The `necoma` command: one module per command group."""
