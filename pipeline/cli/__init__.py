"""The `ltx-batch` command line: `main` parses and dispatches; one module per command.

`run`, `plan` (with `plan_cost` for `--cost`), `status`, `report`, `rerun`, `emulator`, `models` (with
`model_schema`: which schema a model's jobs are checked against, built in, cached or fetched).

May import: anything in the package, the emulator included. Nothing imports `cli`, except
`pipeline.__main__`.
"""
