"""End to end: the SDK's own local API (``handler.py --rp_serve_api``) over HTTP."""
from __future__ import annotations

import requests

from tests.test_voices import fetch


def test_run_then_status_produces_audio(local_api):
    base, env, log_path = local_api
    job = {"input": {"text": "Hello from the local API.", "seed": 11, "nfe_step": 4}}
    queued = requests.post(f"{base}/run", json=job, timeout=30).json()
    assert queued["status"] == "IN_PROGRESS" and queued["id"]
    done = requests.post(f"{base}/status/{queued['id']}", timeout=300).json()
    assert done["status"] == "COMPLETED", done
    output = done["output"]
    assert output["job_id"] == queued["id"] and output["seed"] == 11
    audio = fetch(output["audio_url"])
    assert audio[:4] == b"RIFF" and len(audio) > 10_000

    status = requests.post(f"{base}/runsync", json={"input": {
        "action": "status", "job_id": queued["id"]}}, timeout=60).json()
    assert status["output"]["status"] == "COMPLETED"

    # The SDK shows only the error string of a failed job: it must say everything.
    failed = requests.post(f"{base}/runsync", json={"input": {"text": "x", "speed": 9}},
                           timeout=60).json()
    assert failed["status"] == "FAILED"
    assert failed["error"].startswith("invalid_input: speed")

    # Presigned URLs and handler outputs stay out of the log at the default level.
    log_text = log_path.read_text()
    assert output["audio_url"] not in log_text
