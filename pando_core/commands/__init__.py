"""Built-in ``pando`` subcommands, one module per command group."""
