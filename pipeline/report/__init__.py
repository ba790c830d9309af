"""What a user reads about a run: `status`, the contact sheet and rerun manifests.

`status` (a run folder's journal to a `RunStatus`) with `status_view` (its text and JSON),
`liveness` (is the writer still running) and `server_check` (`status --server`); the contact sheet:
`axes` (values on an axis, in manifest order), `grid` (rows, columns and cells), `sheet` (the HTML,
with CSS and JS from `assets/`), `page` (report.html with its poster frames); `rerun` (a manifest
that reproduces chosen jobs).

May import: the top-level modules, `pipeline.manifest`, `pipeline.api`, `pipeline.ledger` and, for
reconciling in `status --server`, `pipeline.run`. Never `cli`.
"""
