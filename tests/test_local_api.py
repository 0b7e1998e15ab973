"""End to end: the SDK's own local API (``handler.py --rp_serve_api``) over HTTP."""
from __future__ import annotations

import pytest
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


@pytest.mark.slow
def test_the_text_front_end_through_the_local_api(local_api):
    base, _, _ = local_api
    job = {"input": {"text": "It is 10:30. [pause:1s] We paid $45.", "seed": 3, "nfe_step": 4,
                     "return_word_timings": True, "timing_method": "google",
                     "timing_inline": True}}
    done = requests.post(f"{base}/runsync", json=job, timeout=300).json()
    assert done["status"] == "COMPLETED", done
    output = done["output"]
    assert output["spoken_text"] == ("It is ten thirty. [pause:1s] "
                                     "We paid forty-five dollars.")
    assert [w["word"] for w in output["word_timings"]] == ["It", "is", "10:30.", "We", "paid",
                                                          "$45."]
    bad = requests.post(f"{base}/runsync", json={"input": {"text": "[pause:1s] !!"}},
                        timeout=60).json()
    assert bad["status"] == "FAILED" and bad["error"].startswith("invalid_input: text")
