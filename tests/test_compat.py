"""Request shapes of the earlier worker keep working, with the same bounds."""
from __future__ import annotations

import base64

import pytest

from tests.conftest import REFERENCE_TEXT


@pytest.mark.parametrize("alias", ["voice_file", "file"])
def test_upload_base64_aliases(local_worker, reference_wav, alias):
    out = local_worker({"endpoint": "upload", "voice_name": "legacy.wav",
                        alias: base64.b64encode(reference_wav).decode(),
                        "reference_text": REFERENCE_TEXT})
    assert "error" not in out, out
    assert out["voice_name"] == "legacy" and out["has_ref_text"] is True


@pytest.mark.parametrize("alias", ["voice_file_url", "url_file"])
def test_upload_url_aliases(local_worker, http_files, reference_wav, monkeypatch, alias):
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    url = http_files.serve("/v.wav", reference_wav)
    out = local_worker({"action": "upload", "voice_name": "byurl", alias: url})
    assert "error" not in out, out


def test_url_aliases_get_the_same_address_checks(local_worker, http_files):
    url = http_files.serve("/v.wav", b"RIFF")
    out = local_worker({"action": "upload", "voice_name": "byurl", "url_file": url})
    assert out["error"].startswith("forbidden_url:")


def test_endpoint_and_action_may_agree(local_worker):
    assert local_worker({"endpoint": "list_voices", "action": "list_voices"})["count"] == 0
    assert local_worker({"endpoint": "LIST_VOICES"})["count"] == 0


def test_local_voice_url_is_a_voice_url(tts_worker, http_files, reference_wav, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    url = http_files.serve("/ref.wav", reference_wav)
    out = tts_worker({"text": "Legacy.", "local_voice": url, "ref_text": REFERENCE_TEXT,
                      "seed": 1, "nfe_step": 4})
    assert "error" not in out, out
    assert out["voice"] == "voice_url"


def test_download_type_and_enum_case(tts_worker):
    out = tts_worker({"text": "Case.", "seed": 1, "nfe_step": 4, "output_format": "FLAC"},
                     job_id="case")
    assert out["audio_format"] == "flac"
    link = tts_worker({"action": "download", "job_id": "case", "type": "Audio"})
    assert link["key"] == "jobs/case/audio.flac" and link["content_type"] == "audio/flac"


def test_settings_never_print_secrets():
    from settings import load_settings

    settings = load_settings({"AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "S3_BUCKET": "b",
                              "AWS_ACCESS_KEY_ID": "AKIA-ID", "GOOGLE_CREDENTIALS_JSON": "{}x"})
    assert "s3cr3t-value" not in repr(settings) and "AKIA-ID" not in repr(settings)
    assert settings.aws_secret_access_key == "s3cr3t-value"


def test_non_tts_actions_load_no_model_and_no_torch(tmp_path):
    """status, result, download, list_voices, health: answered from records alone."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = """
import json, sys, handler
from worker.inference import engine
outs = [handler.handler({"id": "p", "input": payload}) for payload in json.loads(sys.argv[1])]
print(json.dumps({"outs": outs, "torch": "torch" in sys.modules,
                  "loaded": engine.is_loaded()}))
"""
    payloads = [{"action": "list_voices"}, {"action": "status", "job_id": "none"},
                {"action": "result", "job_id": "none"}, {"action": "health"},
                {"action": "download", "voice_name": "none"}]
    env = {**os.environ, "STORAGE_BACKEND": "local", "LOCAL_STORAGE_DIR": str(tmp_path),
           "DEVICE": "cpu"}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(payloads)],
                          cwd=Path(__file__).resolve().parents[1], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] is False and report["loaded"] is False
    assert report["outs"][0] == {"voices": [], "count": 0}
    assert report["outs"][3]["status"] == "ok"
