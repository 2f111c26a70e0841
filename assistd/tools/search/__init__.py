"""Web search providers behind one interface (`SearchProvider`), and the bounded retry
every provider call of the networked tools goes through."""
