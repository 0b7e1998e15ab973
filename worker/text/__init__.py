"""The text front end: what the caller wrote into what the model reads."""
