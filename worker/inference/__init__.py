"""F5-TTS: model specs and loading, references, synthesis, the transcriber."""
