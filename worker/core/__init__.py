"""Error codes, storage keys and the word timing: what every layer shares."""
