"""A small kustomize for the tests: renders k8s/ overlays with the subset of kustomize that k8s/ uses.

Anything outside that subset raises, so a kustomization that grows a new feature fails the tests here instead of
rendering wrongly; test_kustomize_lite.py checks the output against `kubectl kustomize` where kubectl exists.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "components", "configMapGenerator", "images", "patches"}
Doc = dict[str, Any]


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_all(path: Path) -> list[Any]:
    return [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=StrictLoader) if d is not None]


def kustomization_file(folder: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no kustomization file")


def build(folder: str | Path) -> list[Doc]:
    """Render the kustomization in `folder` (resources, components, generators, patches, images)."""
    folder = Path(folder)
    k = load_all(kustomization_file(folder))[0]
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise NotImplementedError(f"{folder}: kustomize_lite does not support {sorted(unknown)}")
    docs: list[Doc] = []
    for entry in k.get("resources", []):
        p = folder / entry
        docs.extend(build(p) if p.is_dir() else load_all(p))
    for entry in k.get("components", []):
        docs = _apply(folder / entry, docs)
    return _transform(folder, k, docs)


def _apply(component_dir: Path, docs: list[Doc]) -> list[Doc]:
    k = load_all(kustomization_file(component_dir))[0]
    if k.get("kind") != "Component":
        raise ValueError(f"{component_dir}: listed under components but kind is {k.get('kind')!r}")
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise NotImplementedError(f"{component_dir}: kustomize_lite does not support {sorted(unknown)}")
    added = [d for e in k.get("resources", []) for d in load_all(component_dir / e)]
    return _transform(component_dir, k, docs + added)


def _transform(folder: Path, k: Doc, docs: list[Doc]) -> list[Doc]:
    docs = copy.deepcopy(docs)
    for gen in k.get("configMapGenerator", []):
        docs = _generate_configmap(folder, gen, docs)
    for patch in k.get("patches", []):
        ops = load_all(folder / patch["path"])[0]
        if not isinstance(ops, list):
            raise NotImplementedError(f"{patch['path']}: only JSON6902 patches (a list of operations) are supported")
        matched = [d for d in docs if _matches(d, patch.get("target", {}))]
        if not matched:
            raise ValueError(f"{folder}: patch {patch['path']} matches no resource")
        for doc in matched:
            for op in ops:
                apply_op(doc, op)
    for image in k.get("images", []):
        for doc in docs:
            set_images(doc, image)
    return docs


def _generate_configmap(folder: Path, gen: Doc, docs: list[Doc]) -> list[Doc]:
    unknown = set(gen) - {"name", "files", "behavior", "options"}
    opts = gen.get("options", {})
    if unknown or set(opts) - {"disableNameSuffixHash", "labels"} or not opts.get("disableNameSuffixHash"):
        raise NotImplementedError(f"configMapGenerator {gen.get('name')}: only files + labels, without name hashing")
    data = {}
    for entry in gen["files"]:
        key, _, rel = entry.partition("=") if "=" in entry else (Path(entry).name, "", entry)
        data[key] = (folder / rel).read_text(encoding="utf-8")
    meta: Doc = {"name": gen["name"]}
    if opts.get("labels"):
        meta["labels"] = dict(opts["labels"])
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
    same = [i for i, d in enumerate(docs) if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == gen["name"]]
    behavior = gen.get("behavior", "create")
    if behavior == "create" and not same:
        return [*docs, cm]
    if behavior == "replace" and same:
        return [cm if i == same[0] else d for i, d in enumerate(docs)]
    raise ValueError(f"configMapGenerator {gen['name']}: behavior {behavior!r} with {len(same)} existing ConfigMap(s)")


def _matches(doc: Doc, target: Doc) -> bool:
    group, _, version = doc.get("apiVersion", "").rpartition("/")
    have = {"group": group, "version": version, "kind": doc.get("kind"), "name": doc["metadata"]["name"]}
    unknown = set(target) - set(have)
    if unknown:
        raise NotImplementedError(f"patch target fields {sorted(unknown)}")
    return all(have[key] == want for key, want in target.items())


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_op(doc: Doc, op: Doc) -> None:
    """Apply one RFC 6902 operation (add, remove, replace, test) to `doc` in place."""
    *parents, last = _pointer(op["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if isinstance(node, list):
        index = len(node) if (last == "-" and kind == "add") else int(last)
        if kind == "add":
            node.insert(index, copy.deepcopy(op["value"]))
        elif kind in ("remove", "replace"):
            node.pop(index) if kind == "remove" else node.__setitem__(index, copy.deepcopy(op["value"]))
        elif kind == "test" and node[index] != op["value"]:
            raise ValueError(f"test failed at {op['path']}")
    elif kind == "add" or (kind == "replace" and last in node):
        node[last] = copy.deepcopy(op["value"])
    elif kind == "remove" and last in node:
        del node[last]
    elif kind == "test":
        if node.get(last) != op["value"]:
            raise ValueError(f"test failed at {op['path']}")
    else:
        raise ValueError(f"cannot {kind} {op['path']}: the path does not exist or the op is not supported")


def set_images(node: Any, image: Doc) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for c in value:
                    if isinstance(c, dict) and _image_name(c.get("image", "")) == image["name"]:
                        c["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
            set_images(value, image)
    elif isinstance(node, list):
        for item in node:
            set_images(item, image)


def _image_name(ref: str) -> str:
    ref = ref.split("@", 1)[0]
    head, _, tail = ref.rpartition(":")
    return head if head and "/" not in tail else ref
