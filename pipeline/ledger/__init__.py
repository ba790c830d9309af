"""What a run has recorded: the journal, its replay into job states, and the files made from it.

`journal` (the open journal: appends, fsyncs where money is at stake, keeps the replay current), `snapshot`
(the replayed state saved beside the journal, so a resume parses only the events written since),
`replay` (events read back into `JobState`s and a `LedgerState`), `reserve` (disk space kept for the
journal), `rundir` (reading a run folder), `results` (results.json), `results_csv` (results.csv),
`costs` (pure arithmetic over what a run has spent), `standing` (how a manifest's jobs stand in the journal and
what a run would do with them: plan's folder note, run's opening lines and progress).

May import: the top-level modules and `pipeline.manifest`. Never `api`, `run`, `report` or `cli`.
"""
