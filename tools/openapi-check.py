#!/usr/bin/python3
"""Checks recorded HTTP requests against OpenAI's OpenAPI description.

    /usr/bin/python3 tools/openapi-check.py [--json] [--cache-dir DIR] SPEC REQUESTS.json
    /usr/bin/python3 tools/openapi-check.py --locate [DIR]

REQUESTS.json is a list of requests as a server saw them:
    {"method": "GET", "path": "/v1/responses/resp_1",
     "query": "include%5B%5D=x&limit=2"  (the raw query string) or
              {"include[]": ["x"], "limit": "2"}  (decoded names -> values),
     "content_type": "application/json" or null,
     "body_text": "{...}" (the raw body) or "body": <parsed JSON> or null}

For each: the operation (method + path template; the servers URL's path,
/v1, is taken off first), then the query parameters (each declared, each
value fitting its schema, the required ones present), then the JSON body
against the operation's requestBody schema (JSON Schema 2020-12, $refs
resolved in the whole document). Prints one line a request, "ok" or its
problems (--json: a JSON list of {index, method, path, operation_id,
problems, notes}); exits 1 when any request has a problem, 2 on bad input.

Notes are what the spec does not describe but is no error: the query
names with brackets that the official SDKs send (include[]=x,
metadata[k]=v) where the parameter is declared with OpenAPI's default
style (form, explode: true would send include=x and k=v); a Content-Type
on a request without a body.

--locate prints the path of an OpenAPI document whose info.title is
"OpenAI API", found near DIR (default: this repository): DIR and its
parents up to three levels, each as openapi.yaml, openapi/openapi.yaml or
*/openapi/openapi.yaml; exits 3 when there is none (1 is Python's own
failure, a module missing say).
"""
import glob
import hashlib
import json
import os
import re
import sys
import urllib.parse

import yaml
from jsonschema import Draft202012Validator, RefResolver, validators
from jsonschema.exceptions import best_match

TITLE = "OpenAI API"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# ---- finding and loading the document ---------------------------------------

def title_of(path):
    """info.title, read from the file's first lines (the whole file is 3 MB)."""
    try:
        with open(path, encoding="utf-8") as f:
            in_info = False
            for _, line in zip(range(200), f):
                if line.startswith("info:"):
                    in_info = True
                elif in_info and re.match(r"\s+title:", line):
                    return line.split(":", 1)[1].strip().strip("'\"")
                elif in_info and re.match(r"\S", line):
                    return None
    except OSError:
        return None
    return None


def locate(start):
    here = os.path.abspath(start)
    for _ in range(4):  # start and three parents: near enough, never the disk
        for pattern in ("openapi.yaml", "openapi/openapi.yaml", "*/openapi/openapi.yaml"):
            for candidate in sorted(glob.glob(os.path.join(here, pattern))):
                if title_of(candidate) == TITLE:
                    return candidate
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return None


class SpecLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):
    """YAML without timestamps: a date stays the text JSON has for it."""


SpecLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in SpecLoader.yaml_implicit_resolvers.items()
}


# Bumped when load() reads the YAML differently: older copies are then stale.
CACHE_FORMAT = 1


def load(path, cache_dir):
    """The document; with cache_dir, through a JSON copy keyed by the file's
    path, size and mtime (YAML takes about 1.1 s for it, JSON 0.03 s)."""
    cached = None
    if cache_dir:
        st = os.stat(path)
        stamp = f"{CACHE_FORMAT}\0{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}"
        key = hashlib.sha256(stamp.encode()).hexdigest()[:16]
        cached = os.path.join(cache_dir, f"openapi-{key}.json")
        try:
            with open(cached, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            pass
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=SpecLoader)
    if cached:
        os.makedirs(cache_dir, exist_ok=True)
        for stale in glob.glob(os.path.join(cache_dir, "openapi-*.json")):
            os.remove(stale)
        tmp = f"{cached}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, cached)
    return doc


def allow_nullable(node):
    """OpenAPI 3.0's `nullable: true`, left in places of this 3.1 document,
    means "or null"; JSON Schema ignores the word and would refuse null."""
    if isinstance(node, list):
        return [allow_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: allow_nullable(v) for k, v in node.items()}
    if node.get("nullable") is True:
        del node["nullable"]
        kind = node.get("type")
        if isinstance(kind, str):
            node["type"] = [kind, "null"]
            if "enum" in node and None not in node["enum"]:
                node["enum"] = node["enum"] + [None]
        elif kind is None:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


# The description's oneOf lists union members that overlap: an input message
# {"type": "message", "role": "user", "content": [...]} is both an
# EasyInputMessage and an Item, so JSON Schema's oneOf ("exactly one")
# refuses what the API takes. Read as anyOf, as the SDKs generated from
# the description read their unions.
Validator = validators.extend(Draft202012Validator, {"oneOf": Draft202012Validator.VALIDATORS["anyOf"]})


# ---- the document as operations ----------------------------------------------

class Spec:
    def __init__(self, doc):
        self.doc = allow_nullable(doc)
        self.resolver = RefResolver("", self.doc)
        servers = self.doc.get("servers") or [{"url": ""}]
        self.prefix = urllib.parse.urlsplit(servers[0]["url"]).path.rstrip("/")
        self.routes = []
        for template, item in self.doc["paths"].items():
            if "?" in template:  # "/responses?beta=true": a duplicate for other SDKs
                continue
            segments = template.strip("/").split("/")
            for method in METHODS:
                if method in item:
                    self.routes.append((method.upper(), segments, template, item, item[method]))
        # Literal segments first: /responses/compact before /responses/{response_id}.
        self.routes.sort(key=lambda r: [s.startswith("{") for s in r[1]])

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, node = self.resolver.resolve(node["$ref"])
        return node

    def validator(self, schema):
        return Validator(schema, resolver=self.resolver)

    def match(self, method, path):
        """(operation, path item, template, {name: value}) or None."""
        segments = path.strip("/").split("/")
        for route_method, pattern, template, item, operation in self.routes:
            if route_method != method or len(pattern) != len(segments):
                continue
            params = {}
            for want, got in zip(pattern, segments):
                if want.startswith("{") and want.endswith("}"):
                    if got == "":
                        break
                    params[want[1:-1]] = urllib.parse.unquote(got)
                elif want != got:
                    break
            else:
                return operation, item, template, params
        return None

    def parameters(self, item, operation):
        """Declared parameters by (in, name); the operation's win."""
        declared = {}
        for p in (item.get("parameters") or []) + (operation.get("parameters") or []):
            p = self.deref(p)
            declared[(p["in"], p["name"])] = p
        return declared


# ---- query strings -------------------------------------------------------------

def parse_query(query):
    """[(name, value)] in order, percent-decoded, from the raw query string
    or from a table of names -> value or list of values."""
    if not query:
        return []
    if isinstance(query, str):
        return urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    pairs = []
    for name, value in query.items():
        for v in value if isinstance(value, list) else [value]:
            pairs.append((name, v))
    return pairs


def types_of(spec, schema, seen=None):
    """The JSON types a schema (with its $ref, anyOf, oneOf, allOf, enum) allows."""
    seen = seen if seen is not None else set()
    schema = spec.deref(schema)
    if not isinstance(schema, dict) or id(schema) in seen:
        return set()
    seen.add(id(schema))
    kinds = set()
    kind = schema.get("type")
    if isinstance(kind, str):
        kinds.add(kind)
    elif isinstance(kind, list):
        kinds.update(kind)
    for value in schema.get("enum", []):
        kinds.add({bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(value), "null"))
    for word in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(word, []):
            kinds |= types_of(spec, sub, seen)
    return kinds


def coerce(spec, text, schema):
    """A query value as the JSON value the schema asks for: "3" is 3 for
    an integer, "true" true for a boolean; text otherwise."""
    kinds = types_of(spec, schema)
    if kinds & {"integer", "number"} and re.fullmatch(r"-?\d+", text):
        return int(text)
    if "number" in kinds and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text):
        return float(text)
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    return text


def sub_schema(spec, schema, word):
    """The items (word "items") or property values (word "additionalProperties")
    schema of the first alternative that has one."""
    schema = spec.deref(schema)
    if not isinstance(schema, dict):
        return {}
    if isinstance(schema.get(word), dict):
        return schema[word]
    for alt in schema.get("anyOf", []) + schema.get("oneOf", []):
        found = sub_schema(spec, alt, word)
        if found:
            return found
    return {}


def check_query(spec, declared, pairs, problems, notes):
    groups = {}  # base name -> {"plain": [...], "array": [...], "object": {k: v}}
    for name, value in pairs:
        m = re.fullmatch(r"([^\[\]]+)\[([^\[\]]*)\]", name)
        base, key = (m.group(1), m.group(2)) if m else (name, None)
        group = groups.setdefault(base, {"plain": [], "array": [], "object": {}, "names": []})
        group["names"].append(name)
        if key is None:
            group["plain"].append(value)
        elif key == "":
            group["array"].append(value)
        else:
            group["object"][key] = value
    for base, group in groups.items():
        param = declared.get(("query", base))
        if param is None:
            problems.append(f"query parameter '{base}' is not declared for this operation")
            continue
        schema = param.get("schema", {})
        style, explode = param.get("style", "form"), param.get("explode", param.get("style", "form") == "form")
        kinds = types_of(spec, schema)
        forms = [f for f in ("plain", "array", "object") if group[f]]
        if len(forms) > 1:
            problems.append(f"query parameter '{base}' sent as both " + " and ".join(sorted(set(group["names"]))))
            continue
        form = forms[0]
        if form == "array" or (form == "plain" and "array" in kinds):
            items = sub_schema(spec, schema, "items")
            value = [coerce(spec, v, items) for v in group[form]]
            if form == "array" and style == "form" and explode:
                notes.append(f"query parameter '{base}' sent as {base}[]=... (the official SDKs' brackets);"
                             f" OpenAPI style form, explode true would repeat {base}=...")
        elif form == "object":
            values = sub_schema(spec, schema, "additionalProperties")
            value = {k: coerce(spec, v, values) for k, v in group["object"].items()}
            if style != "deepObject":
                notes.append(f"query parameter '{base}' sent as {base}[key]=... (deepObject, as the official SDKs);"
                             f" it is declared with style {style}, explode {str(explode).lower()}")
        else:
            if len(group["plain"]) > 1:
                problems.append(f"query parameter '{base}' sent {len(group['plain'])} times")
                continue
            value = coerce(spec, group["plain"][0], schema)
        for error in sorted(spec.validator(schema).iter_errors(value), key=str):
            problems.append("query parameter " + describe(base, error))
    for (where, name), param in declared.items():
        if where == "query" and param.get("required") and name not in groups:
            problems.append(f"required query parameter '{name}' is missing")


# ---- bodies ---------------------------------------------------------------------

def where(error):
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def branch_score(errors):
    """How far an anyOf/oneOf branch got: a branch whose own type, or a
    const or enum of one of its properties (a discriminator such as role
    or type), refuses the value is not the one meant; then fewer errors,
    then deeper ones."""
    misfit = any(e.validator == "type" and not e.relative_path
                 or e.validator in ("const", "enum") and len(e.relative_path) <= 1 for e in errors)
    return (misfit, len(errors), -max(len(e.relative_path) for e in errors))


def deepest(error):
    """The most telling error under a failed anyOf/oneOf: jsonschema's
    best_match stops where branches tie; the branch that got furthest
    (branch_score) goes on."""
    while error.context:
        branches = {}
        for e in error.context:
            branches.setdefault(e.relative_schema_path[0], []).append(e)
        ranked = sorted(branches.values(), key=branch_score)
        if len(ranked) > 1 and branch_score(ranked[0]) == branch_score(ranked[1]):
            return error
        error = best_match(ranked[0])
    return error


def describe(name, error):
    """The most telling error, after its place: name, then the place in the
    value ("body.messages[0].content", "include[0]")."""
    error = deepest(error)
    return f"{name}{where(error)}: {error.message}"


def check_body(spec, operation, request, problems, notes):
    content_type = (request.get("content_type") or "").split(";")[0].strip().lower()
    if "body_text" in request:
        text = request["body_text"]
        if text is None or text == "":
            body, present = None, False
        else:
            present = True
            try:
                body = json.loads(text)
            except ValueError as e:
                problems.append(f"body is not JSON: {e}")
                return
    else:
        body = request.get("body")
        present = body is not None
    request_body = spec.deref(operation.get("requestBody"))
    if request_body is None:
        if present:
            problems.append("a body is sent, but the operation takes none")
        elif content_type:
            # Harmless to the API, but not what the official SDKs send.
            notes.append(f"Content-Type '{content_type}' sent with an empty body; the operation takes no body")
        return
    if not present:
        if request_body.get("required"):
            problems.append("the operation requires a body; none is sent")
        return
    content = request_body.get("content", {})
    if content_type not in content:
        problems.append(f"body sent as '{content_type}'; the operation takes {', '.join(sorted(content))}")
        return
    schema = content[content_type].get("schema", {})
    errors = sorted(spec.validator(schema).iter_errors(body), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for error in errors:
        problems.append(describe("body", error))


# ---- one request, all requests -------------------------------------------------

def check(spec, request):
    problems, notes = [], []
    method = request["method"].upper()
    path = request["path"].split("?", 1)[0]
    if spec.prefix and (path == spec.prefix or path.startswith(spec.prefix + "/")):
        path = path[len(spec.prefix):]
    else:
        problems.append(f"path {path} is not under the servers' {spec.prefix}")
    found = spec.match(method, path)
    result = {"method": method, "path": request["path"], "operation_id": None, "problems": problems, "notes": notes}
    if found is None:
        problems.append(f"no operation {method} {path} in the spec")
        return result
    operation, item, template, path_params = found
    result["operation_id"] = operation.get("operationId")
    result["template"] = template
    declared = spec.parameters(item, operation)
    for (where_, name), param in declared.items():
        if where_ == "path":
            value = path_params.get(name)
            if value is None:
                problems.append(f"path parameter '{name}' is missing")
                continue
            for error in spec.validator(param.get("schema", {})).iter_errors(value):
                problems.append("path parameter " + describe(name, error))
    query = request.get("query")
    if query is None and "?" in request["path"]:
        query = request["path"].split("?", 1)[1]
    check_query(spec, declared, parse_query(query), problems, notes)
    check_body(spec, operation, request, problems, notes)
    return result


def main(argv):
    args = list(argv)
    if args[:1] == ["--locate"]:
        found = locate(args[1] if len(args) > 1 else os.path.join(os.path.dirname(__file__), ".."))
        if found:
            print(found)
        return 0 if found else 3
    as_json = "--json" in args
    if as_json:
        args.remove("--json")
    cache_dir = None
    if "--cache-dir" in args:
        i = args.index("--cache-dir")
        cache_dir = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    spec = Spec(load(args[0], cache_dir))
    with open(args[1], encoding="utf-8") as f:
        requests = json.load(f)
    results = []
    for index, request in enumerate(requests, 1):
        result = check(spec, request)
        result["index"] = index
        results.append(result)
    if as_json:
        json.dump(results, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for r in results:
            head = f"{r['index']} {r['method']} {r['path']} {r['operation_id'] or '-'}:"
            print(f"{head} ok" if not r["problems"] else f"{head} {len(r['problems'])} problem(s)")
            for p in r["problems"]:
                print(f"  - {p}")
            for n in r["notes"]:
                print(f"  note: {n}")
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
