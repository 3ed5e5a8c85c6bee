"""pando-mesnada: the multi-agent orchestrator plugin."""
