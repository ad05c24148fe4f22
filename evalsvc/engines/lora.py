"""LoRA adapters served by their base checkpoint's engine: checked up front, sized into the engine's LoRA kwargs,
and mapped to the row `model` value under which ray.data.llm's vLLM stage loads each adapter.

How the engine finds an adapter (ray.data.llm 2.60, `vLLMEngineStageUDF._maybe_get_lora_request`): a row whose
`model` differs from the engine's model source is a LoRA request named by that value. Without
`dynamic_lora_loading_path` the value itself is handed to vLLM as the adapter path; with it, the stage downloads
`<dynamic_lora_loading_path>/<value>` with boto3 (S3/GCS/Azure only: a local folder there fails its URI check) into
the actor node's Hugging Face cache (`models--<value>`). So:

- local adapter folders: rows carry the folder's absolute path; every engine actor must see that path (one machine,
  or a volume mounted at the same path on every node, like a local model `source`);
- s3:// adapters with every Ray node on the driver's host (a laptop, a one-pod cluster): the driver downloads them
  with the manifest's S3 settings into a run-scoped temp folder and rows carry those paths, so the engine needs no
  S3 credentials;
- s3:// adapters on a multi-node cluster: the engine's adapters must sit side by side under one prefix
  (s3://bucket/adapters/<folder>/); that prefix becomes `dynamic_lora_loading_path` and rows carry the folder names.
  The engine actors then download with boto3's own chain: credentials from the pods (IRSA, env), a non-AWS
  endpoint from AWS_ENDPOINT_URL_S3 in the cluster's environment; evalsvc never ships credentials to them.
"""

from __future__ import annotations

import atexit
import json
import posixpath
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from evalsvc.errors import UserError

ADAPTER_CONFIG = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# vLLM accepts only these values of max_lora_rank (vllm.config.lora.MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# Projections whose LoRA A matrix reads the hidden state: its input width must be the base's hidden size.
HIDDEN_INPUT = re.compile(r"\.(q_proj|k_proj|v_proj|gate_proj|up_proj)\.lora_A(\.[^.]+)?\.weight$")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Adapter:
    model: str  # the manifest model name (pipeline rows carry it as `lora`)
    field: str  # "models.N.adapter", for messages
    uri: str  # absolute local folder or s3:// prefix
    rank: int  # largest LoRA rank in the adapter


@dataclass(frozen=True)
class LoraServing:
    """What one engine needs to serve its adapters."""

    engine_args: dict  # the base's engine args plus enable_lora / max_lora_rank / max_loras
    row_models: dict[str, str]  # model name → the row `model` value the vLLM stage loads the adapter by
    dynamic_path: str | None  # ray.data.llm's dynamic_lora_loading_path (multi-node s3:// adapters only)


def serve_adapters(manifest, engine: str, base_source: str, conn=None, one_host: bool | None = None) -> LoraServing:
    """Check the adapters served by engine `engine` (a base model name) and work out how its engine loads them."""
    base_i, base = next((i, m) for i, m in enumerate(manifest.models) if m.name == engine)
    adapters = check_adapters(manifest, conn, {engine: base_source}, only_base=engine)
    args = lora_engine_args(base.engine_args.model_dump(exclude_none=True), adapters, f"models.{base_i}")
    rows, dynamic = row_models(adapters, conn, on_one_host() if one_host is None else one_host)
    return LoraServing(args, rows, dynamic)


def check_adapters(
    manifest, conn=None, sources: dict[str, str] | None = None, only_base: str | None = None
) -> list[Adapter]:
    """Every LoRA entry's folder: present, a PEFT LoRA adapter with weights, made for its base. All problems at once.

    `sources` maps a base model name to its resolved source (a folder whose config.json sizes the check)."""
    sources = sources or {}
    by_name = {m.name: m for m in manifest.models}
    found, problems = [], []
    for i, m in enumerate(manifest.models):
        if not m.adapter or (only_base is not None and m.base != only_base):
            continue
        field = f"models.{i}.adapter"
        base_source = sources.get(m.base) or by_name[m.base].source or ""
        try:
            found.append(_check_one(m.name, field, m.adapter, base_source, conn))
        except UserError as e:
            problems.extend(e.lines())
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"{len(problems)} problems in the LoRA adapters", problems)
    return found


def _check_one(name: str, field: str, adapter: str, base_source: str, conn) -> Adapter:
    from pyarrow import fs as pafs

    from evalsvc.store.uri import filesystem, is_s3

    uri = adapter if is_s3(adapter) else str(Path(adapter).expanduser().resolve())
    fs, path = filesystem(uri, conn)
    try:
        kind = fs.get_file_info(path).type
        if kind == pafs.FileType.NotFound:
            raise UserError(f"{field}: {adapter!r} does not exist: point it at a LoRA adapter folder "
                            f"(what PEFT's save_pretrained writes: {ADAPTER_CONFIG} + {WEIGHT_FILES[0]})")
        if kind != pafs.FileType.Directory:
            raise UserError(f"{field}: {adapter!r} is a file: point it at the adapter's folder, not at one file in it")
        names = {posixpath.basename(f.path) for f in fs.get_file_info(pafs.FileSelector(path))}
        if ADAPTER_CONFIG not in names:
            raise UserError(f"{field}: {adapter!r} has no {ADAPTER_CONFIG}: point it at a PEFT LoRA adapter folder "
                            "(the output of save_pretrained), not at a checkpoint or a parent folder")
        if not names & set(WEIGHT_FILES):
            raise UserError(f"{field}: {adapter!r} has no adapter weights ({' or '.join(WEIGHT_FILES)}): "
                            "save the adapter again with save_pretrained")
        config = _read_json(fs, f"{path}/{ADAPTER_CONFIG}", field)
        shapes = _safetensors_shapes(fs, f"{path}/{WEIGHT_FILES[0]}") if WEIGHT_FILES[0] in names else {}
        base_config = _base_config(base_source, conn)
    except OSError as e:  # storage refused (credentials, network): say which field could not be read
        raise UserError(f"{field}: cannot read {adapter!r} ({type(e).__name__}: {str(e)[:200]}): check the "
                        "path, and for s3:// the output.s3 endpoint and credentials") from e
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise UserError(f"{field}: {adapter!r} is a {config['peft_type']} adapter: vLLM serves LoRA adapters only")
    problem = base_mismatch(config.get("base_model_name_or_path"), base_source, base_config, shapes)
    if problem:
        raise UserError(f"{field}: {problem}: point the entry's `base` at the model the adapter was trained on "
                        "(or fix base_model_name_or_path in its adapter_config.json if it names a copy of that model)")
    return Adapter(name, field, uri, adapter_rank(config, shapes))


def _read_json(fs, path: str, field: str) -> dict:
    with fs.open_input_file(path) as f:
        raw = f.read()
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise UserError(f"{field}: {ADAPTER_CONFIG} is not valid JSON ({e}): save the adapter again") from e
    if not isinstance(doc, dict):
        raise UserError(f"{field}: {ADAPTER_CONFIG} is not a JSON object: save the adapter again")
    return doc


def _safetensors_shapes(fs, path: str) -> dict[str, list[int]]:
    """Tensor name → shape from a safetensors header (8-byte length + JSON), without reading the weights."""
    with fs.open_input_file(path) as f:
        head = f.read(8)
        if len(head) < 8:
            return {}
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:  # not a safetensors file; vLLM will say so, this check only sizes ranks
            return {}
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return {}
    return {k: v.get("shape", []) for k, v in header.items() if isinstance(v, dict)}


def _base_config(source: str, conn) -> dict | None:
    """The base checkpoint's config.json when it is at hand (a local or s3:// folder); None for a hub id."""
    from evalsvc.engines.prepare import SCHEME, is_prepared, model_path
    from evalsvc.store.uri import filesystem, is_s3

    if source.startswith(SCHEME):  # evalsvc://NAME: only once built (checking must not build a model)
        name = source[len(SCHEME) :].strip("/")
        try:
            source = str(model_path(name)) if is_prepared(name) else ""
        except UserError:
            return None
    if not source or not (is_s3(source) or Path(source).expanduser().is_dir()):
        return None
    fs, path = filesystem(source, conn)
    try:
        with fs.open_input_file(f"{path}/config.json") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def base_mismatch(declared: str | None, base_source: str, base_config: dict | None, shapes: dict) -> str | None:
    """Why the adapter cannot belong to the base, when that is certain; None when it may."""
    cfg = (base_config or {}).get("text_config") or base_config or {}
    hidden = cfg.get("hidden_size") or cfg.get("d_model") or cfg.get("n_embd")
    if hidden:
        widths = {s[-1] for k, s in shapes.items() if HIDDEN_INPUT.search(k) and len(s) == 2}
        if widths and widths != {hidden}:
            return f"the adapter reads hidden size {sorted(widths)[0]} but the base has {hidden}"
    if declared and _hub_id(declared) and _hub_id(base_source):
        a, b = declared.split("/")[1].lower(), base_source.split("/")[1].lower()
        if a not in b and b not in a:  # a renamed copy (org mirror, -AWQ) keeps the name inside the other
            return f"the adapter was trained on {declared!r}, the base is {base_source!r}"
    return None


def _hub_id(s: str) -> bool:
    return bool(HUB_ID.match(s)) and not Path(s).expanduser().exists()


def adapter_rank(config: dict, shapes: dict) -> int:
    """Largest rank: `r`, any per-module `rank_pattern` override, and what the weights say."""
    ranks = [int(config.get("r") or 0), *(int(v) for v in (config.get("rank_pattern") or {}).values())]
    ranks += [s[0] for k, s in shapes.items() if ".lora_A" in k and len(s) == 2]
    return max(ranks) or 8


def lora_engine_args(engine_args: dict, adapters: list[Adapter], base_field: str) -> dict:
    """The base's engine args plus what serving the adapters needs; a user's own max_lora_rank / max_loras stay."""
    rank = max(a.rank for a in adapters)
    widest = next(a for a in adapters if a.rank == rank)
    fits = [r for r in VLLM_LORA_RANKS if r >= rank]
    if not fits:
        raise UserError(f"{widest.field}: rank {rank} is above vLLM's largest LoRA rank {VLLM_LORA_RANKS[-1]}")
    user_rank = engine_args.get("max_lora_rank")
    if user_rank is not None and user_rank < rank:
        raise UserError(f"{base_field}.engine_args.max_lora_rank: {user_rank} is below rank {rank} of "
                        f"{widest.field}: raise it to {fits[0]} or remove it (evalsvc sizes it from the adapters)")
    if user_rank is not None and user_rank not in VLLM_LORA_RANKS:
        raise UserError(f"{base_field}.engine_args.max_lora_rank: vLLM accepts only {list(VLLM_LORA_RANKS)}")
    out = dict(engine_args, enable_lora=True, max_lora_rank=user_rank or fits[0])
    # One slot per adapter; a smaller max_loras set by the user makes vLLM swap adapters in from CPU memory.
    out["max_loras"] = engine_args.get("max_loras") or len({a.uri for a in adapters})
    return out


def row_models(adapters: list[Adapter], conn, one_host: bool) -> tuple[dict[str, str], str | None]:
    """model name → the row `model` value, and the dynamic_lora_loading_path (see the module docstring)."""
    from evalsvc.store.uri import is_s3

    remote = [a for a in adapters if is_s3(a.uri)]
    if not remote:
        return {a.model: a.uri for a in adapters}, None
    if one_host:
        stage = _stage_dir()
        out = {}
        for a in adapters:
            out[a.model] = _download(a, stage, conn) if is_s3(a.uri) else a.uri
        return out, None
    if len(remote) < len(adapters):
        local = next(a for a in adapters if not is_s3(a.uri))
        raise UserError(f"{local.field}: a multi-node cluster cannot mix local and s3:// adapters on one base: "
                        "upload this one beside the others under one s3:// prefix")
    parents = {a.uri.rstrip("/").rsplit("/", 1)[0] for a in adapters}
    if len(parents) > 1:
        raise UserError(f"{adapters[0].field}: on a multi-node cluster the adapters of one base must sit side by "
                        f"side under one s3:// prefix (s3://bucket/adapters/<folder>/), found {sorted(parents)}")
    return {a.model: a.uri.rstrip("/").rsplit("/", 1)[1] for a in adapters}, parents.pop()


def _stage_dir() -> Path:
    """A fresh temp folder for one engine's downloaded adapters, removed when the driver process ends."""
    path = Path(tempfile.mkdtemp(prefix="evalsvc-lora-"))
    path.chmod(0o755)  # Ray workers may run as another user on a shared machine
    atexit.register(shutil.rmtree, path, True)
    return path


def _download(a: Adapter, stage: Path, conn) -> str:
    from pyarrow import fs as pafs

    from evalsvc.store.uri import filesystem

    target = stage / a.model
    target.mkdir()
    fs, path = filesystem(a.uri, conn)
    pafs.copy_files(path, str(target), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    target.chmod(0o755)
    return str(target)


def on_one_host() -> bool:
    """True when every live Ray node runs on the driver's host (or Ray is not started): local folders then work."""
    try:
        import ray

        if not ray.is_initialized():
            return True
        hosts = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
        return hosts <= {ray.util.get_node_ip_address()}
    except Exception:  # a Ray without the state API: assume the safe, multi-node answer
        return False
