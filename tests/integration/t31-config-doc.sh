#!/bin/bash
# t31-config-doc: docs/config.md documents every configuration key the parser accepts, and
# nothing else, so the two cannot drift apart.
#
# The parser's side: the `static const struct cfg_key NAME[]` tables of proxy/cfg.c, each
# placed in the file by TABLES below (a new table fails the test until it is placed there).
# The documentation's side: a `## `key`` heading names a top-level key and starts its section;
# a `### `a.b.NAME`` heading starts a subsection for a nested mapping; every table row whose
# first cell is a `key` or `a.b` name documents that key under the current (sub)section. Each
# key's row must give a type and a default, the type must agree with the YAML node type the
# parser checks (a mapping, a list, or a scalar), and the key must appear in a YAML example of
# its section. The test prints every difference, both ways, and fails on any.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

CFG_C=$XTP_SRC/proxy/cfg.c
DOC=$XTP_SRC/docs/config.md
[ -r "$CFG_C" ] || fail "$CFG_C not found"
[ -r "$DOC" ] || fail "$DOC not found"
command -v python3 >/dev/null || skip "python3 not found"

if ! python3 - "$CFG_C" "$DOC" >"$T/diff.out" 2>&1 <<'EOF'; then
import re
import sys

cfg_c, doc = sys.argv[1], sys.argv[2]

# Where each key table of proxy/cfg.c sits in the file, as docs/config.md names it: the
# section, then the subsection, joined by dots ("domains.backend" = the backend mapping of a
# domain, documented as `backend.c2s` rows under `## domains`).
TABLES = {
    "root_keys": "",
    "log_keys": "log",
    "tls_keys": "tls",
    "domain_keys": "domains",
    "backend_keys": "domains.backend",
    "listener_keys": "listeners",
    "limits_keys": "limits",
    "s2s_keys": "s2s",
    "remote_keys": "s2s.remotes.DOMAIN",
    "resolve_keys": "resolve",
    "admin_keys": "admin",
}
NODE = {"YAML_SCALAR_NODE": "scalar", "YAML_MAPPING_NODE": "mapping",
        "YAML_SEQUENCE_NODE": "list"}
problems = []

# ---- the parser ---------------------------------------------------------------------------
src = open(cfg_c, encoding="utf-8").read()
parser = {}  # path -> node kind
found = re.findall(r"static const struct cfg_key (\w+)\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
if not found:
    sys.exit(f"no `static const struct cfg_key NAME[]` tables found in {cfg_c}")
for table, body in found:
    if table not in TABLES:
        problems.append(f"proxy/cfg.c: key table {table} is not placed in t31's TABLES: "
                        "add it there with the section that documents it")
        continue
    entries = re.findall(r'\{\s*"([^"]+)"\s*,\s*(YAML_\w+_NODE)\s*,', body)
    if not entries:
        problems.append(f"proxy/cfg.c: key table {table} has no entries this test can read")
    for name, node in entries:
        prefix = TABLES[table]
        parser[f"{prefix}.{name}" if prefix else name] = NODE.get(node, node)
for table in TABLES:
    if table not in dict(found):
        problems.append(f"t31's TABLES names {table}, which proxy/cfg.c no longer has")

# ---- the documentation --------------------------------------------------------------------
documented = {}   # path -> (line, type cell, default cell)
examples = {}     # section -> text of its ```yaml blocks
roots = {}        # top-level key -> heading line
section = None    # current section ("" for several top-level scalars under one heading)
prefix = None     # current (sub)section path; None outside key sections
header = None     # column names of the current table
in_code = False
code_lang = ""
lines = open(doc, encoding="utf-8").read().split("\n")
for no, line in enumerate(lines, 1):
    fence = re.match(r"^\s*```(\w*)", line)
    if fence:
        in_code = not in_code
        code_lang = fence.group(1) if in_code else ""
        continue
    if in_code:
        if code_lang == "yaml" and section is not None:
            examples[section] = examples.get(section, "") + line + "\n"
        continue
    h = re.match(r"^(#{2,3})\s+(.*)$", line)
    if h:
        names = re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", h.group(2))
        header = None
        if len(h.group(1)) == 2:
            if not names or any("." in n for n in names):
                section = prefix = None
            elif len(names) == 1:
                section = prefix = names[0]
                roots[names[0]] = no
                # "Optional mapping." / "Required sequence ...": the section's type and default.
                for nxt in lines[no:]:
                    if nxt.strip():
                        m = re.match(r"(Optional|Required)\b.*?\b(mapping|sequence|list)\b", nxt)
                        documented[names[0]] = (no, m.group(2) if m else "",
                                                m.group(1) if m else "")
                        break
            else:
                section, prefix = "", ""
                for n in names:
                    roots[n] = no
        elif len(names) == 1 and section is not None:
            prefix = names[0]
        continue
    if not line.startswith("|"):
        header = None if line.strip() == "" or not line.startswith("|") else header
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
        continue
    if header is None:
        header = [c.lower() for c in cells]
        continue
    key = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_.]*)`", cells[0])
    if not key or prefix is None:
        continue
    path = f"{prefix}.{key.group(1)}" if prefix else key.group(1)
    if "type" not in header or "default" not in header:
        problems.append(f"docs/config.md:{no}: the table documenting `{path}` needs Type and "
                        "Default columns")
        continue
    get = lambda col: cells[header.index(col)] if header.index(col) < len(cells) else ""
    if path in documented:
        problems.append(f"docs/config.md:{no}: `{path}` documented twice (first on line "
                        f"{documented[path][0]})")
    documented[path] = (no, get("type"), get("default"))
for name, no in roots.items():
    if name not in documented:
        problems.append(f"docs/config.md:{no}: `{name}` has a heading but no row or "
                        "'Optional/Required mapping|sequence' sentence")
        documented[name] = (no, "", "")

# ---- both ways ----------------------------------------------------------------------------
for path in sorted(set(parser) - set(documented)):
    problems.append(f"proxy/cfg.c accepts `{path}`, which docs/config.md does not document")
for path in sorted(set(documented) - set(parser)):
    problems.append(f"docs/config.md:{documented[path][0]} documents `{path}`, which proxy/cfg.c "
                    "does not accept")
for path in sorted(set(parser) & set(documented)):
    no, typ, default = documented[path]
    t = typ.lower()
    kind = "mapping" if "mapping" in t else "list" if ("list" in t or "sequence" in t) \
        else "scalar"
    if not typ or not default:
        problems.append(f"docs/config.md:{no}: `{path}` needs a type and a default")
    if kind != parser[path]:
        problems.append(f"docs/config.md:{no}: `{path}` is documented as {kind} ('{typ}'), but "
                        f"the parser wants a {parser[path]}")
    top = path.split(".")[0]
    sect = top if top in examples else ""
    leaf = path.split(".")[-1]
    if not re.search(rf"(^|[\s{{,]){re.escape(leaf)}:", examples.get(sect, ""), re.M):
        problems.append(f"docs/config.md:{no}: no YAML example in the `{top}` section shows "
                        f"`{leaf}:`")

for p in problems:
    print(p)
print(f"{len(parser)} keys in proxy/cfg.c, {len(documented)} in docs/config.md, "
      f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
EOF
    cat "$T/diff.out"
    fail "docs/config.md and proxy/cfg.c disagree (above)"
fi
log "$(tail -n 1 "$T/diff.out")"
pass
