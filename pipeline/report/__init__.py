"""What a user reads about a run: `status`, the contact sheet and rerun manifests.

`status` (a run folder's journal to a `RunStatus`) with `status_view` (its text and JSON),
`liveness` (is the writer still running) and `server_check` (`status --server`); the contact sheet:
`axes` (values on an axis, in manifest order; which names may be an axis), `grid` (rows, columns, groups
and the cell's axes), `tiles` (one job's compact tile; escaping and link helpers), `sheet` (the HTML page,
with CSS and JS from `assets/`: selectors, contents, synchronised playback), `page` (report.html with its
poster frames); `rerun` (a manifest
that reproduces chosen jobs).

May import: the top-level modules, `pipeline.manifest`, `pipeline.api`, `pipeline.ledger` and, for
reconciling in `status --server`, `pipeline.run`. Never `cli`.
"""
