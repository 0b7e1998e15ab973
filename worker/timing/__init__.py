"""Word timing: the chain of aligners, one module per backend, and the spans."""
