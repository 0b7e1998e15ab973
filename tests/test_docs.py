"""API.md, CONFIG.md and README.md checked against the code, so they cannot drift.

- Every ``json`` request example of API.md (a block with a top-level
  ``input``) runs through the real handler with the tiny models and local
  storage. None may fail with ``invalid_input`` or ``unknown_action``; those
  that can fully run here succeed, and the response block shown after each
  has the keys of the real answer. Examples whose audio lives at an outside
  URL cannot run here (no network): they must get past validation and fail
  only at the fetch.
- CONFIG.md's settings table names exactly the variables the code reads.
  What counts as "a setting the code reads": a name settings.py reads from the
  environment mapping it is given (its helpers take the name as a string
  literal), because settings.py is the only module that reads the
  environment (checked here too). The variables the worker only *sets* for
  its libraries (model_cache_init.configure_cache_env) are not settings; they
  have their own table, compared with what that function really sets. So has
  the Docker image's ENV.
- Each S3 set-up of CONFIG.md loads as settings and presigns a SigV4 URL of
  the documented shape.
- README.md's test command is the command line in .ci/run.
"""
from __future__ import annotations

import ast
import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlparse

import pytest

from worker.core.errors import CODES, INVALID_INPUT, UNKNOWN_ACTION

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "API.md"
CONFIG = ROOT / "CONFIG.md"
REFERENCE_TEXT = "Some call me nature, others call me mother nature."
# Failures that only mean "the outside URL could not be used here".
OFFLINE_CODES = {"fetch_failed", "forbidden_url", "unsupported_media"}


# ---- reading markdown -----------------------------------------------------------

def fenced(text: str, language: str) -> list:
    """(offset, body) of every ```language block."""
    pattern = re.compile(rf"^```{language}\n(.*?)^```", re.S | re.M)
    return [(match.start(), match.group(1)) for match in pattern.finditer(text)]


def section(text: str, heading: str) -> str:
    """The text under a heading, up to the next heading of the same level or
    higher (lines inside code fences are not headings)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines(keepends=True)
    start = lines.index(heading + "\n") + 1
    in_fence = False
    for end in range(start, len(lines)):
        line = lines[end]
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(rf"#{{1,{level}}} ", line):
            return "".join(lines[start:end])
    return "".join(lines[start:])


def table_names(text: str) -> list:
    """Backticked names in the first column of every table row (header excluded)."""
    names = []
    for line in text.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2 and not set(cells[1].strip()) <= set("-"):
            names += re.findall(r"`([^`]+)`", cells[1])
    return names


def table_rows(text: str) -> dict:
    """First-column name -> the other cells, for rows with one backticked name."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([A-Z0-9_]+)`", cells[0]) if line.startswith("|") else None
        if match:
            rows[match.group(1)] = cells[1:]
    return rows


@dataclass
class Example:
    line: int
    request: dict
    response: Optional[dict]

    @property
    def payload(self) -> dict:
        return self.request["input"]

    @property
    def needs_network(self) -> bool:
        return bool(re.search(r'"https?://', json.dumps(self.payload)))


def api_examples() -> list:
    text = API.read_text()
    blocks = []
    for offset, body in fenced(text, "json"):
        line = text.count("\n", 0, offset) + 1
        try:
            blocks.append((offset, line, json.loads(body)))
        except ValueError as exc:
            pytest.fail(f"API.md line {line}: not JSON: {exc}")
    examples = []
    for index, (offset, line, block) in enumerate(blocks):
        if not (isinstance(block, dict) and "input" in block):
            continue
        response = None
        if index + 1 < len(blocks):
            next_offset, _, following = blocks[index + 1]
            between = re.sub(r"^```.*?^```", "", text[offset:next_offset], flags=re.S | re.M)
            # The response is the very next block, within the same section.
            if "input" not in following and not re.search(r"^#", between, re.M):
                response = following
        examples.append(Example(line, block, response))
    return examples


# ---- API.md ---------------------------------------------------------------------

def test_every_action_has_a_section_with_a_request_and_a_response():
    from worker import schemas

    text = API.read_text()
    for action in schemas.SCHEMAS:
        body = section(text, f"## {action}")
        requests = [json.loads(b) for _, b in fenced(body, "json") if '"input"' in b]
        assert any(r["input"].get("action", "tts") == action for r in requests), action
        assert len(fenced(body, "json")) > len(requests), f"{action}: no response example"


def test_field_tables_list_exactly_the_schema_fields():
    from worker import schemas

    text = API.read_text()
    for action in ("tts", "upload", "download"):
        documented = table_names(section(text, f"## {action}"))
        assert sorted(documented) == sorted(schemas.SCHEMAS[action].model_fields), action


def test_errors_table_lists_exactly_the_error_codes():
    documented = table_names(section(API.read_text(), "## Errors"))
    assert sorted(documented) == sorted(CODES)


def test_error_examples_use_real_codes():
    for _, body in fenced(API.read_text(), "json"):
        block = json.loads(body)
        if isinstance(block, dict) and "error" in block:
            assert block["error"].split(":")[0] in CODES, block["error"]


def test_compatibility_section_names_every_alias():
    from worker import schemas

    text = section(API.read_text(), "## Compatibility with the earlier worker")
    for aliases in schemas.ALIASES.values():
        for alias in aliases:
            assert f"`{alias}`" in text, alias
    assert "`endpoint`" in text


def _example_job_id(examples: list) -> str:
    (status,) = [e for e in examples if e.payload.get("action") == "status"]
    return status.payload["job_id"]


@pytest.fixture
def docs_worker(tts_worker, reference_wav, tmp_path, monkeypatch):
    """The tts worker plus a tiny aligner and NLTK data, so timing examples run
    WhisperX for real instead of trying to download its aligner."""
    from tests.tiny_align import build_align_model, build_punkt, use_nltk_data

    model = build_align_model(tmp_path / "wav2vec2")
    nltk_root = build_punkt(tmp_path / "nltk_data")
    use_nltk_data(nltk_root, monkeypatch)
    monkeypatch.setenv("ALIGN_MODEL", str(model))
    tts_worker.reference_b64 = base64.b64encode(reference_wav).decode()
    return tts_worker


def _ensure_voice(worker, name: str) -> None:
    from worker.services import voices

    if not voices.exists(worker.storage, name):
        done = worker({"action": "upload", "voice_name": name,
                       "voice_base64": worker.reference_b64, "ref_text": REFERENCE_TEXT})
        assert "error" not in done, done


def _prepare(worker, example: Example) -> dict:
    """The state an example assumes; returns the payload to send."""
    from worker import schemas
    from worker.services import voices

    action, fields = schemas.normalize(example.payload)
    if action == "upload":
        # An upload example creates its voice: start without it.
        if voices.exists(worker.storage, fields["voice_name"].removesuffix(".wav")):
            worker({"action": "delete_voice", "voice_name": fields["voice_name"]})
    else:
        _ensure_voice(worker, "narrator")
    payload = dict(example.payload)
    if action in ("tts", "script") and "nfe_step" not in payload:
        payload["nfe_step"] = 4   # speed only: a valid value, same code path
    return payload


def test_api_request_examples_run_through_the_handler(docs_worker):
    examples = api_examples()
    assert len(examples) >= 12
    job_id = _example_job_id(examples)
    _ensure_voice(docs_worker, "narrator")
    first = docs_worker({"text": "Hello! This is my cloned voice.", "voice": "narrator",
                         "seed": 42, "nfe_step": 4}, job_id=job_id)
    assert "error" not in first, first
    for number, example in enumerate(examples):
        payload = _prepare(docs_worker, example)
        result = docs_worker(payload, job_id=f"docs-{number}")
        where = f"API.md line {example.line}: {result}"
        if "error" in result:
            code = result["error"].split(":")[0]
            assert code not in (INVALID_INPUT, UNKNOWN_ACTION), where
            assert example.needs_network and code in OFFLINE_CODES, where
            continue
        if example.response is not None:
            assert set(example.response) == set(result), (
                f"API.md line {example.line}: the response example has "
                f"{sorted(set(example.response) ^ set(result))} unlike the real answer")


def test_examples_with_outside_urls_succeed_when_the_url_is_reachable(
        docs_worker, http_files, reference_wav, monkeypatch):
    """The offline allowance above is narrow: the same examples, with their
    outside URL served by a local server, run to success."""
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")   # the local server is on 127.0.0.1
    examples = [e for e in api_examples() if e.needs_network]
    assert len(examples) >= 3
    for number, example in enumerate(examples):
        payload = _prepare(docs_worker, example)
        text = json.dumps(payload)
        for url in set(re.findall(r'"(https?://[^"]+)"', text)):
            local = http_files.serve(urlparse(url).path, reference_wav)
            text = text.replace(f'"{url}"', json.dumps(local))
        result = docs_worker(json.loads(text), job_id=f"docs-url-{number}")
        assert "error" not in result, (example.line, result)
        if example.response is not None:
            assert set(example.response) == set(result), example.line


# ---- CONFIG.md: settings ---------------------------------------------------------

def settings_read() -> set:
    """Names settings.py reads from its ``env`` mapping (see the module docstring)."""
    names = set()
    tree = ast.parse((ROOT / "settings.py").read_text())
    for node in ast.walk(tree):
        literal = None
        if isinstance(node, ast.Call) and len(node.args) >= 2 \
                and isinstance(node.args[0], ast.Name) and node.args[0].id == "env":
            literal = node.args[1]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "env":
            literal = node.args[0] if node.args else None
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and node.value.id == "env":
            literal = node.slice
        elif isinstance(node, ast.Compare) and any(isinstance(op, ast.In) for op in node.ops) \
                and any(isinstance(c, ast.Name) and c.id == "env" for c in node.comparators):
            literal = node.left
        if isinstance(literal, ast.Constant) and isinstance(literal.value, str):
            names.add(literal.value)
    return names


def worker_modules() -> list:
    return sorted(ROOT.glob("*.py")) + sorted((ROOT / "worker").rglob("*.py"))


def env_reads(path: Path) -> list:
    """Reads of os.environ / os.getenv in a module (writes such as setdefault excluded)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "getenv":
            found.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in ("get", "__getitem__") \
                and ast.unparse(node.value) == "os.environ":
            found.append(node.lineno)
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" \
                and isinstance(node.ctx, ast.Load):
            found.append(node.lineno)
    return found


def config_settings() -> dict:
    return table_rows(section(CONFIG.read_text(), "## Settings"))


def test_settings_py_is_the_only_module_that_reads_the_environment():
    offenders = {path.name: env_reads(path) for path in worker_modules()
                 if path.name != "settings.py" and env_reads(path)}
    assert not offenders, f"read the environment through settings.py: {offenders}"


def test_config_lists_exactly_the_settings_the_code_reads():
    read = settings_read()
    assert {"S3_BUCKET", "MODEL_CACHE_DIR", "FLASH_ATTN_WHEEL_URL"} <= read   # the scan works
    documented = set(config_settings())
    assert not read - documented, f"add to CONFIG.md: {sorted(read - documented)}"
    assert not documented - read, f"CONFIG.md documents unread: {sorted(documented - read)}"


def test_config_defaults_are_the_code_defaults():
    from settings import load_settings

    defaults = load_settings({})
    checked = 0
    for name, cells in config_settings().items():
        literal = re.fullmatch(r"`([^`]+)`", cells[0])
        if not literal:
            continue   # a default described in words ("none", "derived", ...)
        value = getattr(defaults, name.lower())
        expected = Path(literal.group(1)) if isinstance(value, Path) else literal.group(1)
        actual = str(value).lower() if isinstance(value, bool) else value
        assert str(actual) == str(expected), f"{name}: CONFIG.md says {expected}, code {actual}"
        checked += 1
    assert checked >= 12


def test_config_lists_exactly_the_variables_the_worker_sets(tmp_path, monkeypatch):
    import model_cache_init

    # A private environ: configure_cache_env's writes land here, not in os.environ.
    fake: dict = {}
    monkeypatch.setattr(model_cache_init.os, "environ", fake)
    model_cache_init.configure_cache_env(tmp_path)
    assert fake, "configure_cache_env set nothing"
    documented = table_rows(section(CONFIG.read_text(),
                                    "## Variables the worker sets for its libraries"))
    assert set(documented) == set(fake)
    for name, (set_to, _) in documented.items():
        relative = Path(fake[name]).relative_to(tmp_path)
        assert set_to == f"`<MODEL_CACHE_DIR>/{relative}`", name


def test_config_lists_exactly_the_image_environment():
    from tests.test_delivery import dockerfile, env_names

    documented = table_rows(section(CONFIG.read_text(), "## The Docker image"))
    assert set(documented) == env_names(dockerfile())


# ---- CONFIG.md: S3 set-ups -------------------------------------------------------

def s3_setups() -> dict:
    text = section(CONFIG.read_text(), "## S3 set-ups")
    setups = {}
    for heading in re.findall(r"^### (.+)$", text, re.M):
        (block,) = [body for _, body in fenced(section(text, f"### {heading}"), "dotenv")]
        setups[heading] = dict(line.split("=", 1) for line in block.splitlines()
                               if line.strip() and not line.startswith("#"))
    return setups


def test_s3_setups_cover_the_four_providers():
    assert set(s3_setups()) == {"AWS S3", "Backblaze B2", "MinIO", "Cloudflare R2"}


@pytest.mark.parametrize("provider", ["AWS S3", "Backblaze B2", "MinIO", "Cloudflare R2"])
def test_s3_setup_presigns_the_documented_url(provider):
    from s3_utils import S3Storage
    from settings import load_settings

    env = s3_setups()[provider]
    settings = load_settings(env)
    assert settings.uses_s3 and settings.s3_addressing_style == env["S3_ADDRESSING_STYLE"]
    url = urlparse(S3Storage(settings).presign("jobs/x/audio.wav", 600))   # offline: signing only
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].split("/")[2] == env["AWS_REGION"]
    prefix = f"{env['S3_PREFIX']}/" if env.get("S3_PREFIX") else ""
    bucket = env["S3_BUCKET"]
    if env.get("AWS_ENDPOINT_URL"):
        endpoint = urlparse(env["AWS_ENDPOINT_URL"])
        assert (url.scheme, url.netloc) == (endpoint.scheme, endpoint.netloc)
        assert url.path == f"/{bucket}/{prefix}jobs/x/audio.wav"
    else:
        assert url.netloc == f"{bucket}.s3.{env['AWS_REGION']}.amazonaws.com"
        assert url.path == f"/{prefix}jobs/x/audio.wav"


# ---- README.md and .ci/run -------------------------------------------------------

def test_readme_test_command_is_the_ci_command():
    blocks = [body.strip() for _, body in fenced((ROOT / "README.md").read_text(), "bash")
              if "pytest" in body]
    assert len(blocks) == 1, "README.md should show one test command"
    lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")
                and not line.startswith(("set ", "cd "))]
    assert commands == [blocks[0]]
    assert os.access(ROOT / ".ci/run", os.R_OK)
