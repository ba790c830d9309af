"""The `ltx-batch` command line: `main` parses and dispatches; one module per command.

`run`, `plan` (with `plan_cost` for `--cost`), `status`, `report`, `rerun`, `emulator`.

May import: anything in the package, the emulator included. Nothing imports `cli`, except
`pipeline.__main__`.
"""
