"""Knowledge retrieval: parse files, chunk them, embed the chunks, search them (dense + keyword)."""
