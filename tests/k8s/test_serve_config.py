"""The judge RayService's serveConfigV2 and the RayJob's run manifest, checked by the code that will read them.

Ray Serve's deploy schema, ray.serve.llm's LLMConfig (imports vLLM: marked slow) and evalsvc's own manifest model.
"""

from __future__ import annotations

import copy
import dataclasses
from urllib.parse import urlparse

import pytest
import yaml
from rendered import OVERLAYS, one, render


def serve_config(overlay: str) -> dict:
    return yaml.safe_load(one(render(overlay), "RayService")["spec"]["serveConfigV2"])


def llm_configs(overlay: str) -> list[dict]:
    (app,) = serve_config(overlay)["applications"]
    return app["args"]["llm_configs"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serve_config_validates_against_ray_serve_deploy_schema(overlay):
    from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

    raw = serve_config(overlay)
    schema = ServeDeploySchema.model_validate(raw)
    (app,) = schema.applications
    assert (app.name, app.route_prefix, app.import_path) == ("judge_app", "/", "ray.serve.llm:build_openai_app")
    # Serve ignores unknown keys silently: a misspelt one would be lost without a word.
    assert set(raw) <= set(ServeDeploySchema.model_fields)
    assert set(raw["applications"][0]) <= set(ServeApplicationSchema.model_fields)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c["applications"][0].__setitem__("import_path", "build_openai_app"),
        lambda c: c.__setitem__("proxy_location", "Everywhere"),
        lambda c: c["http_options"].__setitem__("port", "eighty"),
        lambda c: c["applications"].append(copy.deepcopy(c["applications"][0])),
    ],
    ids=["import-path-without-module", "unknown-proxy-location", "port-not-a-number", "duplicate-app"],
)
def test_serve_deploy_schema_rejects_a_broken_config(breakage):
    from ray.serve.schema import ServeDeploySchema

    broken = serve_config("base")
    breakage(broken)
    with pytest.raises(Exception, match="validation error"):
        ServeDeploySchema.model_validate(broken)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_judge_is_one_autoscaling_model_called_judge(overlay):
    (cfg,) = llm_configs(overlay)
    assert cfg["model_loading_config"]["model_id"] == "judge"
    scaling = cfg["deployment_config"]["autoscaling_config"]
    assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"] and scaling["target_ongoing_requests"] > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_run_manifest_is_a_valid_evalsvc_manifest_pointing_at_the_judge_service(overlay):
    from evalsvc.manifest.load import parse_manifest

    docs = render(overlay)
    manifest = parse_manifest(one(docs, "ConfigMap")["data"]["run.yaml"], source=f"{overlay} run.yaml")
    url = urlparse(manifest.judge.url)
    service = one(docs, "RayService")["metadata"]["name"]
    assert url.hostname == f"{service}-serve-svc", "KubeRay names the Serve Service <rayservice>-serve-svc"
    assert url.port == serve_config(overlay)["http_options"]["port"] and url.path == "/v1"
    assert manifest.judge.model_name == llm_configs(overlay)[0]["model_loading_config"]["model_id"]
    output = one(docs, "RayJob")["spec"]["entrypoint"].split("--output ", 1)[1]
    assert output == manifest.output.uri


@pytest.fixture(scope="module")
def serve_llm():
    """ray.serve.llm and vLLM's engine arguments (the import loads vLLM and torch: ~20 s on 2 cores)."""
    serve_llm = pytest.importorskip("ray.serve.llm", reason="ray.serve.llm needs vLLM (pip install evalsvc[cpu])")
    from vllm.engine.arg_utils import AsyncEngineArgs

    return serve_llm, {f.name for f in dataclasses.fields(AsyncEngineArgs)}


@pytest.mark.slow
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_llm_configs_validate_with_ray_serve_llm(overlay, serve_llm):
    module, engine_fields = serve_llm
    (app,) = serve_config(overlay)["applications"]
    module.LLMServingArgs.model_validate(app["args"])
    for cfg in llm_configs(overlay):
        parsed = module.LLMConfig.model_validate(cfg)
        assert parsed.model_id == "judge"
        unknown = set(cfg.get("engine_kwargs", {})) - engine_fields
        assert not unknown, f"engine_kwargs that vLLM does not know: {sorted(unknown)}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c.__setitem__("engine_kwarg", {}),  # a typo of engine_kwargs
        lambda c: c["deployment_config"]["autoscaling_config"].__setitem__("min_replicas", "one"),
        lambda c: c.__setitem__("accelerator_type", "GTX-9000"),
        lambda c: c["model_loading_config"].pop("model_id"),
    ],
    ids=["unknown-key", "bad-autoscaling", "unknown-accelerator", "no-model-id"],
)
def test_llm_config_rejects_a_broken_copy(breakage, serve_llm):
    module, _ = serve_llm
    cfg = copy.deepcopy(llm_configs("base")[0])
    breakage(cfg)
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        module.LLMConfig.model_validate(cfg)
