"""The actions: job records, the voice library, tts."""
