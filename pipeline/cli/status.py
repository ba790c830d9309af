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
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError
from pipeline.report.status import run_status
from pipeline.report.status_view import status_json, status_text

if TYPE_CHECKING:
    from pipeline.config import Settings

HELP = "show a run's progress and what a resume would do (works while the run is going)"

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds ledger.jsonl)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON (every job listed)")
    parser.add_argument("--server", action="store_true",
                        help="also compare the journal with the account's jobs on the server (needs credentials; "
                             "changes nothing)")
    parser.add_argument("--config", metavar="FILE", help="a YAML file of settings, for --server")
    parser.add_argument("--api-url", metavar="URL", help="API base URL, for --server (also SCENARIO_API_URL)")


def execute(args: argparse.Namespace) -> int:
    status = run_status(args.run_dir)
    check = _check_server(args, status.manifest) if args.server else None
    if args.json:
        data = status_json(status)
        if check is not None:
            data["server"] = asdict(check)
        json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        print(status_text(status))
        if check is not None:
            from pipeline.report.server_check import check_text

            print(check_text(check))
    return 0


def _check_server(args: argparse.Namespace, manifest_path: str | None) -> Any:
    from pipeline.config import load_credentials, load_settings
    from pipeline.report.server_check import check_server

    settings = load_settings(config_file=args.config, overrides={"api_base_url": args.api_url})
    credentials = load_credentials()
    run_dir = Path(args.run_dir).expanduser()
    return asyncio.run(check_server(run_dir, settings, credentials,
                                    _manifest_bodies(run_dir, manifest_path, settings)))


def _manifest_bodies(run_dir: Path, manifest_path: str | None, settings: Settings
                     ) -> dict[str, tuple[str, dict[str, Any]]] | None:
    """key -> (model, request body) of the manifest's jobs whose inputs the journal has asset ids for."""
    from pipeline.cli.model_schema import load_checked
    from pipeline.ledger.replay import JOURNAL_NAME, replay

    if not manifest_path:
        return None
    try:
        manifest = load_checked(manifest_path, settings)
    except (PipelineError, OSError) as exc:
        log.warning("the run's manifest %s cannot be read (%s): server jobs are not matched against it",
                    manifest_path, exc)
        return None
    uploads = replay(run_dir / JOURNAL_NAME, keep_specs=False).uploads
    return {spec.key: (spec.model, spec.body(uploads)) for spec in manifest.jobs()
            if all(ref.kind != "file" or (ref.sha256 or "") in uploads for ref in spec.inputs)}
