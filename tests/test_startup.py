"""The start sequence, the cache folder, health facts and the fitness check."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from model_cache_init import (
    CACHE_SUBDIR,
    StartupReport,
    choose_cache_dir,
    configure_cache_env,
    fitness_check,
    health_facts,
    prepare_worker,
    upload_missing_models,
)
from s3_utils import S3Storage
from settings import load_settings
from worker.startup.lazy_install import LAZY_PACKAGES, LazyPackage

ROOT = Path(__file__).resolve().parents[1]
CACHE_VARS = ("HF_HOME", "HF_HUB_CACHE", "TORCH_HOME", "NLTK_DATA", "XDG_CACHE_HOME")
GIB = 1024 ** 3


@pytest.fixture
def clean_cache_env(monkeypatch):
    """configure_cache_env writes os.environ; monkeypatch puts it back afterwards."""
    for name in CACHE_VARS:
        monkeypatch.delenv(name, raising=False)


def base_env(tmp_path, **extra):
    return {"STORAGE_BACKEND": "local", "LOCAL_STORAGE_DIR": str(tmp_path / "storage"),
            "MODEL_CACHE_DIR": str(tmp_path / "cache"), "DEVICE": "cpu",
            "LAZY_INSTALL": "off", **extra}


def test_model_cache_dir_setting_wins(tmp_path):
    settings = load_settings({"MODEL_CACHE_DIR": str(tmp_path / "mine")})
    assert choose_cache_dir(settings) == tmp_path / "mine"


def test_cache_dir_is_the_roomiest_base_with_space_for_the_models(tmp_path):
    volume, scratch, home = (tmp_path / n for n in ("volume", "scratch", "home"))
    for base in (volume, scratch, home):
        base.mkdir()
    free = {volume: 50 * GIB, scratch: 80 * GIB, home: 2 * GIB}
    chosen = choose_cache_dir(load_settings({}), [volume, scratch, home, tmp_path / "absent"],
                              lambda path: free[path])
    assert chosen == scratch / CACHE_SUBDIR
    free = {volume: 1 * GIB, scratch: 3 * GIB, home: 2 * GIB}
    chosen = choose_cache_dir(load_settings({}), [volume, scratch, home],
                              lambda path: free[path])
    assert chosen == scratch / CACHE_SUBDIR   # none has room: the most there is


def test_cache_env_points_inside_and_explicit_values_win(tmp_path, clean_cache_env,
                                                         monkeypatch):
    monkeypatch.setenv("TORCH_HOME", "/operator/choice")
    configure_cache_env(tmp_path)
    assert os.environ["HF_HOME"] == str(tmp_path / "hf")
    assert os.environ["HF_HUB_CACHE"] == str(tmp_path / "hf" / "hub")
    assert os.environ["NLTK_DATA"] == str(tmp_path / "nltk_data")
    assert os.environ["XDG_CACHE_HOME"] == str(tmp_path / "xdg")
    assert os.environ["TORCH_HOME"] == "/operator/choice"
    assert (tmp_path / "hf" / "hub").is_dir()


def test_prepare_worker_reports_every_step_and_survives_a_failed_preload(
        tmp_path, clean_cache_env, caplog):
    settings = load_settings(base_env(tmp_path, PRELOAD_MODEL="true"))

    def preload():
        raise RuntimeError("checkpoint unreadable")

    caplog.set_level("INFO")
    report = prepare_worker(settings, preload)
    assert isinstance(report, StartupReport)
    assert set(report.packages) == {p.name for p in LAZY_PACKAGES}
    assert all(s in ("installed", "missing") for s in report.packages.values())
    assert report.flash_attn == "not attempted: no CUDA device"
    assert report.cache_dir == str(tmp_path / "cache")
    assert report.cache_sync == "disabled"
    assert report.timing_methods_available[-1] == "estimate"
    assert os.environ["HF_HOME"] == str(tmp_path / "cache" / "hf")
    messages = [r.getMessage() for r in caplog.records if r.name == "model_cache_init"]
    for step in ("flash-attn", "packages", "model cache sync", "preload"):
        assert any(m.startswith(f"startup: {step}: ") for m in messages), step
    assert any("preload: failed: RuntimeError: checkpoint unreadable" in m for m in messages)


def test_every_install_of_one_start_shares_one_deadline(tmp_path, clean_cache_env):
    """prepare_worker sets the deadline once; an install that starts after it
    is refused even though its own call has not used any budget (the clock is
    a test clock: the first reading is the start, every later one is 301 s on)."""
    from worker.startup.lazy_install import InstallOptions

    readings = iter([0.0])
    options = InstallOptions(budget_s=300, clock=lambda: next(readings, 301.0),
                             attempts=1, sleep=lambda seconds: None)
    settings = load_settings(base_env(tmp_path, LAZY_INSTALL="auto"))
    absent = LazyPackage("lazy-nothing", "lazy_nothing", 1, version="1.0")
    report = prepare_worker(settings, installs=options, packages=[absent])
    assert report.packages == {
        "lazy-nothing": "failed: out of start-up time (300 s for all installs)"}


def test_prepare_worker_syncs_the_cache_before_preloading(s3_env, tmp_path, clean_cache_env):
    env = {**s3_env, "ENABLE_S3_MODEL_CACHE": "true", "PRELOAD_MODEL": "true",
           "MODEL_CACHE_DIR": str(tmp_path / "cache"), "DEVICE": "cpu", "LAZY_INSTALL": "off"}
    settings = load_settings(env)
    storage = S3Storage(settings)
    seed = tmp_path / "seed"
    (seed / "hf/hub/models--org--tiny/blobs").mkdir(parents=True)
    (seed / "hf/hub/models--org--tiny/blobs/aa").write_bytes(b"model bytes")
    upload_missing_models(settings, storage, seed).join(30)
    seen = []

    def preload():
        model = tmp_path / "cache/hf/hub/models--org--tiny/blobs/aa"
        seen.append(model.read_bytes())
        (tmp_path / "cache/torch/loaded.bin").write_bytes(b"fetched by the load")

    report = prepare_worker(settings, preload, storage=storage)
    assert report.cache_sync.startswith("downloaded 1 files")
    assert seen == [b"model bytes"]
    for thread in threading.enumerate():
        if thread.name == "model-cache-upload":
            thread.join(30)
    assert storage.head("models/torch/loaded.bin").size == len(b"fetched by the load")


def test_prepare_worker_survives_a_broken_bucket(s3_env, tmp_path, clean_cache_env):
    env = {**s3_env, "ENABLE_S3_MODEL_CACHE": "true", "MODEL_CACHE_DIR": str(tmp_path / "c"),
           "DEVICE": "cpu", "LAZY_INSTALL": "off"}
    settings = load_settings(env)
    storage = S3Storage(settings)
    storage.put_bytes("models/manifest.json", b"<html>not a manifest</html>")
    report = prepare_worker(settings, storage=storage)
    assert report.cache_sync.startswith("failed: ")


def test_health_reports_package_states_and_timing_methods(tmp_path):
    # A cache folder that does not exist yet: free space is read where it would be.
    settings = load_settings(base_env(tmp_path, MODEL_CACHE_DIR=str(tmp_path / "a/b/c")))
    absent = LazyPackage("lazy-nothing", "lazy_nothing", 1, version="1.0")
    present = LazyPackage("requests", "requests", 1, version="2")
    report = StartupReport(packages={"lazy-nothing": "failed: pip exited 1: ERROR: gone"})
    facts = health_facts(settings, packages=[absent, present])
    assert facts["packages"] == {"lazy-nothing": "missing", "requests": "installed"}
    facts = health_facts(settings, report, packages=[absent, present])
    assert facts["packages"]["lazy-nothing"] == "failed: pip exited 1: ERROR: gone"
    assert facts["device"] == "cpu" and facts["gpu"] is None
    assert facts["flash_attn"] == "not attempted: no CUDA device"
    assert isinstance(facts["disk_free_gb"], float) and facts["disk_free_gb"] > 0
    assert facts["timing_methods_available"] == ["estimate"]


def test_health_timing_methods_follow_packages_and_credentials(tmp_path):
    whisperx = LazyPackage("whisperx", "whisperx", 1, version="3.7.4")
    speech = LazyPackage("google-cloud-speech", "google.cloud.speech", 1, version="2")
    packages = [whisperx, speech]
    facts = health_facts(load_settings(base_env(tmp_path)), packages=packages)
    assert facts["packages"] == {"whisperx": "installed", "google-cloud-speech": "installed"}
    assert facts["timing_methods_available"] == ["whisperx", "estimate"]
    endpoint_only = load_settings(base_env(tmp_path, GOOGLE_SPEECH_ENDPOINT="127.0.0.1:1"))
    assert "google" not in health_facts(endpoint_only, packages=packages)[
        "timing_methods_available"]
    with_google = load_settings(base_env(tmp_path, GOOGLE_CREDENTIALS_JSON="{}"))
    assert health_facts(with_google, packages=packages)["timing_methods_available"] == [
        "whisperx", "google", "estimate"]


def test_health_is_cheap_and_the_module_imports_no_torch(tmp_path):
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "import model_cache_init, settings\n"
            "imported = 'torch' in sys.modules\n"
            f"s = settings.load_settings({base_env(tmp_path)!r})\n"
            "facts = model_cache_init.health_facts(s)\n"
            "print(json.dumps([imported, 'torch' in sys.modules, 'whisperx' in sys.modules,"
            " sorted(facts)]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == [False, False, False,
                               ["device", "disk_free_gb", "flash_attn", "gpu", "packages",
                                "timing_methods_available"]]


def test_fitness_check_passes_on_a_working_setup(tmp_path):
    fitness_check(load_settings(base_env(tmp_path)))


def test_fitness_check_names_an_unwritable_cache_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = load_settings(base_env(tmp_path, MODEL_CACHE_DIR=str(blocker / "cache")))
    with pytest.raises(RuntimeError, match="MODEL_CACHE_DIR"):
        fitness_check(settings)


def test_fitness_check_names_an_unreachable_bucket(s3_env, tmp_path):
    env = {**s3_env, "S3_BUCKET": "bucket-that-does-not-exist",
           "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    with pytest.raises(RuntimeError, match=r"storage \(s3\) is not usable"):
        fitness_check(load_settings(env))
