"""pando-rag: remembrances (knowledge base, session memory, code index) with hybrid search."""
