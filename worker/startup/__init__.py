"""Start-up: lazy installs and the bucket mirror of the model cache."""
