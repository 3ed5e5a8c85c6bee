"""pando-lsp: language servers for diagnostics after edits."""
