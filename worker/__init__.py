"""The worker's code below ``handler.py``, in layers that import only downwards:

- ``core``: error codes, storage keys, the word timing type (standard library only).
- ``media``, ``text``: caller audio and URLs; the text front end and its words.
- ``inference``, ``timing``: F5-TTS loading and synthesis (torch); word timing.
- ``services``: the actions (job records, voices, tts) that put the layers to work.
- ``startup``: lazy installs and the model cache mirror, run before the first job.

``settings``, ``s3_utils``, ``model_cache_init`` and ``timing_formats`` stay at the
top level under the names operators, the Dockerfile and the docs know.
"""
