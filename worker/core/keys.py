"""Every storage key the worker writes or reads, built in one place.

Keys are logical (the storage backend adds ``S3_PREFIX``). Names and job ids
reach these functions only after the schema's patterns, so no key can leave
its prefix. The layout is the contract's ("Storage layout").
"""
from __future__ import annotations

JOBS = "jobs/"
VOICES = "voices/"
SEGMENTS = "segments/"
MODELS = "models/"
MODELS_MANIFEST = MODELS + "manifest.json"
FITNESS = ".fitness/"
DOWNLOADABLE = (JOBS, VOICES)   # the prefixes `download` may hand out


def job_prefix(job_id: str) -> str:
    return f"{JOBS}{job_id}/"


def job_record(job_id: str) -> str:
    return f"{job_prefix(job_id)}job.json"


def job_audio(job_id: str, fmt: str) -> str:
    return f"{job_prefix(job_id)}audio.{fmt}"


def job_timings(job_id: str, fmt: str) -> str:
    return f"{job_prefix(job_id)}timings.{fmt}"


def job_segment(job_id: str, index: int, fmt: str) -> str:
    return f"{job_prefix(job_id)}segments/{index}.{fmt}"


def job_part(job_id: str, number: int) -> str:
    return f"{job_prefix(job_id)}parts/{number}.wav"


def voice_prefix(name: str) -> str:
    return f"{VOICES}{name}/"


def voice_reference(name: str) -> str:
    return f"{voice_prefix(name)}reference.wav"


def voice_meta(name: str) -> str:
    return f"{voice_prefix(name)}voice.json"


def voice_transcript(name: str) -> str:
    """Beside the direct layout's audio: a transcript a job made of it."""
    return f"{voice_prefix(name)}reference.txt"


def voice_upload_audio(name: str, upload_id: str) -> str:
    """One upload's audio; voice.json names the upload that is the voice now."""
    return f"{voice_prefix(name)}uploads/{upload_id}/reference.wav"


def voice_claims(name: str) -> str:
    """Where uploads racing on a store without conditional writes claim a name."""
    return f"{voice_prefix(name)}claims/"


def voice_claim(name: str, upload_id: str) -> str:
    return f"{voice_claims(name)}{upload_id}"


def flat_voice(name: str) -> tuple:
    """The earlier worker's flat layout: audio and transcript beside the others."""
    return f"{VOICES}{name}.wav", f"{VOICES}{name}.txt"


def segment(key: str) -> str:
    return f"{SEGMENTS}{key}.wav"


def segment_meta(key: str) -> str:
    """Beside a stored segment: where its chunks lie (written after the audio)."""
    return f"{SEGMENTS}{key}.json"


def model_file(relative: str) -> str:
    return f"{MODELS}{relative}"


def fitness_probe(token: str) -> str:
    return f"{FITNESS}{token}"


def if_absent_probe(token: str) -> str:
    """Written and removed once per storage client, to learn whether the store
    honours conditional writes."""
    return f".probes/if-absent-{token}"
