#!/usr/bin/env python3
"""Regenerates specs/zendesk.toml or specs/intercom.toml from the vendor's OpenAPI
(../shared/upstream-api-specs/zendesk/openapi-src.yaml, intercom/2.16/api.intercom.io.yaml).

Usage: python3 specs/tools/support_catalog.py zendesk ../shared/upstream-api-specs > specs/zendesk.toml
       python3 specs/tools/support_catalog.py intercom ../shared/upstream-api-specs > specs/intercom.toml
The catalogs are checked in; connectors/{zendesk,intercom}/tests/catalog.rs check them against the specs.
"""
import json, os, re, sys

import yaml

# name, method, endpoint (weft's), vendor path, items key, primary key, cursor, deletes, options, description
ZENDESK = [
    ("tickets", "get", "/api/v2/incremental/tickets/cursor.json", "/api/v2/incremental/tickets/cursor", "tickets",
     ["id"], "updated_at", True, {"read": "cursor_export"},
     "Tickets, from the cursor-based incremental export (deleted tickets come with status `deleted`)."),
    ("users", "get", "/api/v2/incremental/users/cursor.json", "/api/v2/incremental/users/cursor", "users",
     ["id"], "updated_at", False, {"read": "cursor_export"},
     "Users (agents and end users), from the cursor-based incremental export."),
    ("organizations", "get", "/api/v2/incremental/organizations.json", "/api/v2/incremental/organizations",
     "organizations", ["id"], "updated_at", False, {"read": "time_export"},
     "Organizations, from the time-based incremental export."),
    ("ticket_fields", "get", "/api/v2/ticket_fields.json", "/api/v2/ticket_fields", "ticket_fields",
     ["id"], None, False, {"read": "list", "next": "/next_page"},
     "Ticket fields (system and custom), read in full every run."),
    ("groups", "get", "/api/v2/groups.json", "/api/v2/groups", "groups",
     ["id"], None, False, {"read": "list", "next": "/links/next", "page_size_param": "page[size]"},
     "Groups of agents, read in full every run (cursor pagination)."),
    ("ticket_comments", "get", "/api/v2/incremental/tickets/cursor.json", "/api/v2/tickets/{ticket_id}/comments",
     "comments", ["id"], "ticket_updated_at", False,
     {"read": "children", "child": "/api/v2/tickets/{id}/comments.json", "child_items": "comments",
      "parent_fields": ["ticket_id", "ticket_updated_at"]},
     "Comments of the tickets changed since the cursor (the tickets' incremental export, then each "
     "ticket's comments); every comment carries its ticket's id and `updated_at`."),
]
# Lists read in full every run (name, description): cursor-paginated (`page[size]`, `links.next`)
# unless marked unpaginated; the endpoint is /api/v2/{name}.json, the records under `name`.
ZENDESK_LISTS = [
    ("brands", True, "Brands of the account, read in full every run (cursor pagination)."),
    ("ticket_forms", False, "Ticket forms, read in full every run (one unpaginated list)."),
    ("user_fields", True, "Custom user fields, read in full every run (cursor pagination)."),
    ("organization_fields", True, "Custom organization fields, read in full every run (cursor pagination)."),
    ("group_memberships", True, "Agents' memberships of groups, read in full every run (cursor pagination)."),
    ("organization_memberships", True,
     "Users' memberships of organizations, read in full every run (cursor pagination)."),
    ("macros", True, "Shared and personal macros, read in full every run (cursor pagination)."),
    ("satisfaction_ratings", True,
     "Satisfaction ratings of tickets, read in full every run (cursor pagination)."),
    ("ticket_metrics", True,
     "Metrics of each (unarchived) ticket, read in full every run (cursor pagination)."),
]
ZENDESK += [
    (name, "get", f"/api/v2/{name}.json", f"/api/v2/{name}", name, ["id"], None, False,
     {"read": "list", "next": "/links/next", "page_size_param": "page[size]"} if cursor
     else {"read": "list", "next": "/next_page"}, desc)
    for name, cursor, desc in ZENDESK_LISTS
]

INTERCOM = [
    ("contacts", "post", "/contacts/search", "/contacts/search", "data", ["id"], "updated_at", False,
     {"read": "search"}, "Contacts (users and leads), searched by `updated_at` in ascending order."),
    ("companies", "get", "/companies/scroll", "/companies/scroll", "data", ["id"], None, False,
     {"read": "scroll", "fallback": "/companies"},
     "Companies, read in full through the scroll API (the paged list when another scroll is open)."),
    ("conversations", "post", "/conversations/search", "/conversations/search", "conversations", ["id"],
     "updated_at", False, {"read": "search"},
     "Conversations, searched by `updated_at` in ascending order."),
    ("admins", "get", "/admins", "/admins", "admins", ["id"], None, False, {"read": "list"},
     "Admins (teammates) of the workspace, read in full every run."),
    ("tags", "get", "/tags", "/tags", "data", ["id"], None, False, {"read": "list"},
     "Tags of the workspace, read in full every run."),
    ("conversation_parts", "post", "/conversations/search", "/conversations/{conversation_id}",
     "conversation_parts.conversation_parts", ["id"], "conversation_updated_at", False,
     {"read": "parts", "child": "/conversations/{id}"},
     "Parts (messages, notes, assignments) of the conversations changed since the cursor, from each "
     "conversation; every part carries its conversation's id and `updated_at`."),
    ("teams", "get", "/teams", "/teams", "teams", ["id"], None, False, {"read": "list"},
     "Teams of admins, read in full every run."),
    ("segments", "get", "/segments", "/segments", "segments", ["id"], None, False,
     {"read": "list", "query.include_count": "true"},
     "Segments of contacts, with the number of contacts in each, read in full every run."),
    ("contact_attributes", "get", "/data_attributes", "/data_attributes", "data", ["name"], None, False,
     {"read": "list", "query.model": "contact", "query.include_archived": "true"},
     "Data attributes of contacts (standard and custom, archived ones too), read in full every run."),
    ("company_attributes", "get", "/data_attributes", "/data_attributes", "data", ["name"], None, False,
     {"read": "list", "query.model": "company", "query.include_archived": "true"},
     "Data attributes of companies (standard and custom, archived ones too), read in full every run."),
]


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("tag:yaml.org,2002:value", lambda l, n: l.construct_scalar(n))


def resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def properties(spec, schema):
    schema = resolve(spec, schema)
    props = {}
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            props.update(properties(spec, part))
    props.update(schema.get("properties", {}))
    return props


def record_props(spec, method, path, items):
    op = spec["paths"][path][method]
    body = op["responses"]["200"]["content"]["application/json"]["schema"]
    *outer, last = items.split(".")
    for key in outer:
        body = properties(spec, body)[key]
    return properties(spec, resolve(spec, properties(spec, body)[last])["items"])


# Fields weft adds to a child record: name -> (type, doc).
OWN_FIELDS = {
    "ticket_comments": {
        "ticket_id": ("integer", "The id of the ticket the comment belongs to (added by weft)."),
        "ticket_updated_at": ("timestamp",
                              "When the comment's ticket last changed: the stream's cursor (added by weft)."),
    },
    "conversation_parts": {
        "conversation_id": ("string", "The id of the conversation the part belongs to (added by weft)."),
        "conversation_updated_at": ("unix_seconds",
                                    "When the part's conversation last changed: the stream's cursor (added by weft)."),
    },
}


def doc(text):
    text = re.sub(r"<[^>]+>", " ", text or "").replace("**", "").replace("\n", " ")
    text = re.sub(r"\s+", " ", text).strip()
    return re.split(r"(?<=[.])\s", text)[0][:300]


def field_type(name, prop):
    t = prop.get("type")
    fmt = prop.get("format")
    if t in ("object", "array") or "$ref" in prop or any(k in prop for k in ("allOf", "anyOf", "oneOf")):
        return "json"
    if t == "integer":
        # Intercom: times are Unix seconds (`format: date-time`, or a `*_at` name).
        return "unix_seconds" if fmt == "date-time" or name.endswith("_at") else "integer"
    if t == "number":
        return "number"
    if t == "boolean":
        return "boolean"
    # Zendesk: times are ISO 8601 strings (`date-time`/`datetime`, or a `*_at` name).
    if fmt in ("date-time", "datetime") or name.endswith("_at"):
        return "timestamp"
    return "string"


def q(s):
    return json.dumps(s, ensure_ascii=False)


def main(vendor, folder):
    if vendor == "zendesk":
        path, streams = os.path.join(folder, "zendesk/openapi-src.yaml"), ZENDESK
        desc = ("Zendesk Support: tickets and their comments, users, organizations, ticket fields and groups, "
                "brands, ticket forms, user and organization fields, group and organization memberships, "
                "macros, satisfaction ratings and ticket metrics.")
        source = "Zendesk's OpenAPI (openapi-src.yaml)"
    else:
        path, streams = os.path.join(folder, "intercom/2.16/api.intercom.io.yaml"), INTERCOM
        desc = "Intercom: contacts, companies, conversations and their parts, admins, tags, teams, segments and data attributes."
        source = "Intercom's OpenAPI 2.16 (api.intercom.io.yaml)"
    spec = yaml.load(open(path), Loader=Loader)
    out = [f"# {vendor.capitalize()} stream catalog. Generated by specs/tools/support_catalog.py from {source};",
           f"# checked against it by connectors/{vendor}/tests/catalog.rs.",
           f"connector = {q(vendor)}", f"description = {q(desc)}", ""]
    for name, method, endpoint, vpath, items, pk, cursor, deletes, opts, sdesc in streams:
        child = opts.get("child")
        props = record_props(spec, "get" if child else method, vpath, items)
        own = OWN_FIELDS.get(name, {})
        if child and vendor == "intercom":
            # The parent search lists `conversations`; each one's parts are under `items`.
            opts = dict(opts, child_items="/" + items.replace(".", "/"))
            items = "conversations"
        elif child:
            # The tickets' export lists the parents.
            items = "tickets"
        out += ["[[streams]]", f"name = {q(name)}", f"description = {q(sdesc)}", f"endpoint = {q(endpoint)}",
                f"pagination = {q(opts['read'])}", "primary_key = [" + ", ".join(q(k) for k in pk) + "]"]
        if cursor:
            out.append(f"cursor = {q(cursor)}")
        out.append('write_disposition = "merge"')
        if deletes:
            out.append("deletes = true")
        out += ["", "[streams.options]", f"method = {q(method)}", f"items = {q(items)}"]
        out += [f"{k} = {q(v)}" for k, v in opts.items() if not k.startswith("query.")]
        query = {k[len("query."):]: v for k, v in opts.items() if k.startswith("query.")}
        if query:
            out += ["", "[streams.options.query]"] + [f"{k} = {q(v)}" for k, v in query.items()]
        out.append("")
        for fname in sorted(props, key=lambda f: (f not in pk, f)):
            prop = props[fname]
            out += ["[[streams.fields]]", f"name = {q(fname)}", f"type = {q(field_type(fname, prop))}",
                    f"doc = {q(doc(prop.get('description', '')))}", ""]
        for fname, (ftype, fdoc) in own.items():
            out += ["[[streams.fields]]", f"name = {q(fname)}", f"type = {q(ftype)}", f"doc = {q(fdoc)}", ""]
    print("\n".join(out).rstrip("\n"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
