"""pando-acp: ``pando acp`` runs pando as an Agent Client Protocol agent over stdio."""
