"""The manifest: YAML text to checked jobs. Pure: no asyncio, no network, no run folder.

`schema` holds any model's inputs as typed records (parsed from `GET /v1/models/{id}`, which the CLI
fetches and passes in, or the built-in one: `params`, LTX-2 19B's parameter table, the one source of
truth for that model) and `schema_check` checks values against one. `layers` reads the top level and
each batch into values checked against its model's schema, with `hints` for the YAML traps behind a
bad value (a comma or ': ' in unquoted text, `16:9` read as a number); `expand` turns a batch into
`JobSpec`s, lazily, filling in the model's defaults, and checks whole jobs (the `required` rules,
duplicates); `inputs` checks and hashes the files of any file input (a `file_array` input's list is
one value); `load` ties them into a `Manifest`, collecting every problem in one pass.

May import: the top-level modules (`pipeline.errors`, `pipeline.spec`, `pipeline.yamlpos`: YAML
with the line of every path). Nothing else of the package.
"""
