"""Every action refuses bad input with the contract's exact code, before any work."""
from __future__ import annotations

import base64

import pytest

WAV64 = base64.b64encode(b"RIFF....WAVE").decode()
CASES = [
    # (input, code, words the message must hold)
    ("not an object", "invalid_input", "JSON object"),
    ({"action": "dance"}, "unknown_action", "dance"),
    ({"action": 5}, "unknown_action", "5"),
    ({"action": "tts", "endpoint": "upload", "text": "x"}, "invalid_input", "differ"),
    ({}, "invalid_input", "text"),
    ({"text": ""}, "invalid_input", "text"),
    ({"text": "   \n "}, "invalid_input", "text"),
    ({"text": 5}, "invalid_input", "text"),
    ({"text": "x" * 5001}, "payload_too_large", "5000"),
    ({"text": "hi", "speed": 0.4}, "invalid_input", "speed"),
    ({"text": "hi", "speed": 2.5}, "invalid_input", "speed"),
    ({"text": "hi", "speed": "fast"}, "invalid_input", "speed"),
    ({"text": "hi", "seed": -1}, "invalid_input", "seed"),
    ({"text": "hi", "seed": 2**31}, "invalid_input", "seed"),
    ({"text": "hi", "seed": 1.5}, "invalid_input", "seed"),
    ({"text": "hi", "seed": "42"}, "invalid_input", "seed"),
    ({"text": "hi", "nfe_step": 3}, "invalid_input", "nfe_step"),
    ({"text": "hi", "nfe_step": 65}, "invalid_input", "nfe_step"),
    ({"text": "hi", "cfg_strength": 10.5}, "invalid_input", "cfg_strength"),
    ({"text": "hi", "remove_silence": "yes"}, "invalid_input", "remove_silence"),
    ({"text": "hi", "output_format": "aac"}, "invalid_input", "output_format"),
    ({"text": "hi", "timing_method": "guess"}, "invalid_input", "timing_method"),
    ({"text": "hi", "timing_format": "txt"}, "invalid_input", "timing_format"),
    ({"text": "hi", "subtitle_cues": "sentence"}, "invalid_input", "subtitle_cues"),
    ({"text": "hi", "language": "english!"}, "invalid_input", "language"),
    ({"text": "hi", "voice": "../etc/passwd"}, "invalid_input", "voice"),
    ({"text": "hi", "voice": "a", "voice_url": "https://example.com/a.wav"},
     "invalid_input", "voice_url"),
    ({"text": "hi", "local_voice": "a", "voice": "b"}, "invalid_input", "local_voice"),
    ({"text": "hi", "volume": 3}, "invalid_input", "volume"),
    ({"text": "hi", "voice_url": "ftp://example.com/a.wav"}, "forbidden_url", "http"),
    ({"text": "hi", "voice_url": "http://169.254.169.254/latest/"}, "forbidden_url", "public"),
    ({"text": "hi", "local_voice": "http://10.0.0.1/a.wav"}, "forbidden_url", "public"),
    ({"action": "upload", "voice_name": "v"}, "invalid_input", "voice_url or voice_base64"),
    ({"action": "upload", "voice_name": "v", "voice_base64": WAV64,
      "voice_url": "https://example.com/a.wav"}, "invalid_input", "exactly one"),
    ({"action": "upload", "voice_name": "-v", "voice_base64": WAV64}, "invalid_input",
     "voice_name"),
    ({"action": "upload", "voice_name": "v" * 65, "voice_base64": WAV64}, "invalid_input",
     "voice_name"),
    ({"action": "upload", "voice_name": "v", "voice_base64": "@@not base64@@"},
     "invalid_input", "base64"),
    ({"action": "upload", "voice_name": "v", "voice_base64": "A" * 40_000_000},
     "payload_too_large", "voice_base64"),
    ({"action": "upload", "voice_name": "v", "voice_file": WAV64, "file": WAV64},
     "invalid_input", "voice_base64"),
    ({"action": "upload", "voice_name": "v", "voice_file_url": "http://127.1/a.wav"},
     "forbidden_url", "public"),
    ({"action": "upload", "voice_name": "v", "voice_base64": WAV64, "overwrite": "true"},
     "invalid_input", "overwrite"),
    ({"action": "list_voices", "prefix": "x"}, "invalid_input", "prefix"),
    ({"action": "delete_voice"}, "invalid_input", "voice_name"),
    ({"action": "delete_voice", "voice_name": "nobody"}, "not_found", "nobody"),
    ({"action": "status"}, "invalid_input", "job_id"),
    ({"action": "status", "job_id": "../../voices"}, "invalid_input", "job_id"),
    ({"action": "status", "job_id": "unknown-job"}, "not_found", "unknown-job"),
    ({"action": "result", "job_id": "unknown-job"}, "not_found", "unknown-job"),
    ({"action": "download", "job_id": "j"}, "invalid_input", "file"),
    ({"action": "download", "job_id": "j", "file": "model"}, "invalid_input", "file"),
    ({"action": "download", "job_id": "j", "voice_name": "v", "file": "audio"},
     "invalid_input", "either"),
    ({"action": "download", "job_id": "j", "file": "audio", "expires_in": 59},
     "invalid_input", "expires_in"),
    ({"action": "download", "job_id": "j", "file": "audio", "expires_in": 604801},
     "invalid_input", "expires_in"),
    ({"action": "download", "job_id": "nope", "file": "audio"}, "not_found", "nope"),
    ({"action": "download", "voice_name": "nobody"}, "not_found", "nobody"),
    ({"action": "health", "verbose": True}, "invalid_input", "verbose"),
]


@pytest.mark.parametrize("payload,code,words", CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_bad_input_gets_the_exact_code(local_worker, payload, code, words):
    out = local_worker(payload)
    assert set(out) == {"error"}, out
    assert out["error"].startswith(f"{code}: "), out
    assert words in out["error"], out
    assert "Traceback" not in out["error"]
    # Nothing was stored for a refused request but, for a tts job that had
    # started, its FAILED record with the same error.
    keys = [info.key for info in local_worker.storage.list("")]
    for key in keys:
        record = local_worker.storage.get_json(key)
        assert key.endswith("/job.json") and record["status"] == "FAILED", key
        assert record["error"] == out["error"]


def test_there_are_enough_cases():
    assert len(CASES) >= 30
    actions = {c[0].get("action", "tts") for c in CASES if isinstance(c[0], dict)}
    assert {"tts", "upload", "list_voices", "delete_voice", "status", "result", "download",
            "health"} <= actions
