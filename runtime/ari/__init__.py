"""The Asterisk ARI edge: the thin client, its event stream, and the adapter that runs calls on it."""
