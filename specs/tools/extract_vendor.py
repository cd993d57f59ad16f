#!/usr/bin/env python3
"""Extracts, from the vendors' full API descriptions, only what weft uses.

Usage: python3 specs/tools/extract_vendor.py [UPSTREAM_DIR]   (needs PyYAML)
       UPSTREAM_DIR defaults to ../shared/upstream-api-specs

For each [[file]] of specs/tools/vendor.toml it keeps the listed paths ("PATH"
for every method, "METHOD PATH" for one) and component schemas, then every `#/...` reference they reach,
transitively, and writes specs/vendor/<source with a .json extension>. Output is
deterministic: the source's key order, one-space-indented JSON, one trailing newline.
The tests read these files (WEFT_SPECS_DIR may point elsewhere); SOURCES.md
beside them names each origin, version and licence.
"""
import json
import os
import sys
import tomllib

import yaml

# Zendesk's description uses `=` as a key; YAML 1.1 tags it "value".
yaml.SafeLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def lookup(doc, pointer):
    node = doc
    for token in pointer.lstrip("/").split("/"):
        token = unescape(token)
        if isinstance(node, list):
            node = node[int(token)]
        else:
            node = node[token]
    return node


def refs(node):
    """Every local `$ref` pointer under node."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            r = n.get("$ref")
            if isinstance(r, str) and r.startswith("#/"):
                yield r[1:]
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)


METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def escape(token):
    return token.replace("~", "~0").replace("/", "~1")


def select_paths(doc, entries):
    """{path: path item} for entries "PATH" (every method) or "METHOD PATH"."""
    out = {}
    for entry in entries:
        method, _, path = entry.rpartition(" ")
        item = doc.get("paths", {}).get(path)
        if item is None or (method and method not in item):
            sys.exit(f"{entry} is not in the vendor file")
        kept = out.setdefault(path, {k: v for k, v in item.items() if k not in METHODS})
        for m in item:
            if m in METHODS and (not method or m == method):
                kept[m] = item[m]
    # Source order of paths and of methods within each.
    return {
        p: {k: out[p][k] for k in doc["paths"][p] if k in out[p]}
        for p in doc["paths"]
        if p in out
    }


def extract(doc, paths, schemas):
    kept_paths = select_paths(doc, paths)
    keep = set()
    todo = list(refs(kept_paths))
    for s in schemas:
        if s not in doc.get("components", {}).get("schemas", {}):
            sys.exit(f"schema {s} is not in the vendor file")
        todo.append("/components/schemas/" + escape(s))
    while todo:
        pointer = todo.pop()
        if pointer in keep:
            continue
        keep.add(pointer)
        try:
            todo.extend(refs(lookup(doc, pointer)))
        except (KeyError, IndexError, ValueError):
            sys.exit(f"dangling reference #{pointer}")
    # Whole components (a schema, a parameter, ...) are kept, in source order.
    wanted = {}
    for pointer in keep:
        parts = [unescape(t) for t in pointer.lstrip("/").split("/")]
        if parts[0] != "components" or len(parts) < 3:
            sys.exit(f"reference #{pointer} is not to a component")
        wanted.setdefault(parts[1], set()).add(parts[2])
    out = {k: doc[k] for k in ("openapi", "swagger", "info") if k in doc}
    out["paths"] = kept_paths
    comps = doc.get("components", {})
    out["components"] = {
        kind: {k: v for k, v in entries.items() if k in wanted[kind]}
        for kind, entries in comps.items()
        if kind in wanted
    }
    return out


def main():
    upstream = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "upstream-api-specs")
    with open(os.path.join(ROOT, "specs", "tools", "vendor.toml"), "rb") as f:
        selection = tomllib.load(f)
    for entry in selection["file"]:
        source = entry["source"]
        with open(os.path.join(upstream, source), encoding="utf-8") as f:
            doc = json.load(f) if source.endswith(".json") else yaml.safe_load(f)
        out = extract(doc, entry.get("paths", []), entry.get("schemas", []))
        target = os.path.join(ROOT, "specs", "vendor", os.path.splitext(source)[0] + ".json")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        text = json.dumps(out, indent=1, ensure_ascii=False, default=str) + "\n"
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{target[len(ROOT) + 1:]}: {len(text):,} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
