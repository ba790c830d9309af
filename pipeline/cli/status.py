"""`ltx-batch status RUN_DIR`: counts, failures, unknown POSTs, time, requests and what a resume would do;
with `--server`, the journal held against the account's job listing (changing nothing)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from collections.abc import Iterable
from typing import Any, TextIO

from pipeline.errors import PipelineError
from pipeline.report.status import job_entries, run_status_and_state
from pipeline.report.status_view import status_json, status_text

HELP = "show a run's progress and what a resume would do (works while the run is going)"
EXIT_STATUSES = (
    (0, "the status was shown"),
    (1, "--server: the job listing failed"),
    (2, "not a run folder (no ledger.jsonl), a bad flag or config; --server without credentials"),
    (3, "--server: the API refused the credentials"),
)

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds ledger.jsonl)")
    parser.add_argument("--json", action="store_true",
                        help="print the status as JSON, every job listed in `jobs` (key, index, batch, status, "
                             "job_id, error, files...)")
    parser.add_argument("--server", action="store_true",
                        help="also compare the journal with the account's jobs on the server (needs credentials; "
                             "changes nothing)")
    parser.add_argument("--config", metavar="FILE", help="a YAML file of settings, for --server")
    parser.add_argument("--api-url", metavar="URL", help="API base URL, for --server (also SCENARIO_API_URL)")


def execute(args: argparse.Namespace) -> int:
    status, state = run_status_and_state(args.run_dir)
    check = _check_server(args, status.manifest) if args.server else None
    if args.json:
        data = status_json(status)
        if check is not None:
            data["server"] = asdict(check)
        write_json(data, job_entries(status, state), sys.stdout)
    else:
        print(status_text(status))
        if check is not None:
            from pipeline.report.server_check import check_text

            print(check_text(check))
    return 0


def write_json(data: dict[str, Any], jobs: Iterable[dict[str, Any]], out: TextIO) -> None:
    """The status as one JSON object, its `jobs` array streamed one job per line (memory flat in the jobs)."""
    head = json.dumps({**data, "jobs": []}, ensure_ascii=False, indent=1)
    assert head.endswith('"jobs": []\n}')
    out.write(head[: -len("[]\n}")] + "[")
    for number, job in enumerate(jobs):
        out.write(",\n  " if number else "\n  ")
        out.write(json.dumps(job, ensure_ascii=False))
    out.write("\n ]\n}\n")


def _check_server(args: argparse.Namespace, manifest_path: str | None) -> Any:
    from pipeline.cli.run import SETTING_FLAGS
    from pipeline.config import load_credentials, load_settings
    from pipeline.report.server_check import check_server

    settings = load_settings(config_file=args.config, overrides={"api_base_url": args.api_url}, flags=SETTING_FLAGS)
    credentials = load_credentials()
    run_dir = Path(args.run_dir).expanduser()
    return asyncio.run(check_server(run_dir, settings, credentials, _manifest_bodies(run_dir, manifest_path)))


def _manifest_bodies(run_dir: Path, manifest_path: str | None) -> dict[str, tuple[str, dict[str, Any]]] | None:
    """key -> (model, request body) of the manifest's jobs whose inputs the journal has asset ids for."""
    from pipeline.ledger.replay import JOURNAL_NAME, replay
    from pipeline.manifest.load import load_manifest

    if not manifest_path:
        return None
    try:
        manifest = load_manifest(manifest_path)
    except (PipelineError, OSError) as exc:
        log.warning("the run's manifest %s cannot be read (%s): server jobs are not matched against it",
                    manifest_path, exc)
        return None
    uploads = replay(run_dir / JOURNAL_NAME, keep_specs=False).uploads
    return {spec.key: (spec.model, spec.body(uploads)) for spec in manifest.jobs()
            if all(ref.kind != "file" or (ref.sha256 or "") in uploads for ref in spec.inputs)}
