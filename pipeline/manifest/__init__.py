"""The manifest: YAML text to checked jobs. Pure: no asyncio, no network, no run folder.

`params` is the model's parameter table, the one source of truth for names, types, ranges and
defaults; `layers` reads the top level and each batch into checked values, with `hints` for the
YAML traps behind a bad value (a comma or ': ' in unquoted text, `16:9` read as a number);
`expand` turns a batch into `JobSpec`s, lazily, and checks whole jobs; `inputs` checks and hashes
the input files; `load` ties them into a `Manifest`, collecting every problem in one pass.
`schema` holds any model's inputs as typed records (parsed from `GET /v1/models/{id}`, or the
built-in table) and `schema_check` checks one job's parameters against one.

May import: the top-level modules (`pipeline.errors`, `pipeline.spec`, `pipeline.yamlpos`: YAML
with the line of every path). Nothing else of the package.
"""
