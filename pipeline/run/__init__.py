"""One run of a manifest: the stages a job passes through, in one TaskGroup.

`runner` builds the stages and shuts them down in order. A job flows `produce` (resume from the
journal, uploads with `inputs`, the manifest's new jobs) -> `submit` (intent, POST, jobId) -> `poll` (the jobs on
`tracking`'s board, watched with the job listing by `watch`, with `cursor` and `schedule`, pure) ->
`resolve` (download URLs in batches) -> `download` (with `storage`, the output files). Beside them:
`context` (what the stages share), `roster` (the run's one walk over the manifest, and every job's key
it leaves), `adopt` and `reconcile` (lost POSTs matched with the server's job listing), `strays`,
`pricing` (dry runs and the --max-cost gate), `shutdown` (signals), `progress` (what the user sees),
`limit` (the jobs a run --limit N sends) and `outcome` (the tally, results.json and the summary).

May import: the top-level modules, `pipeline.manifest`, `pipeline.api` and `pipeline.ledger`.
"""
