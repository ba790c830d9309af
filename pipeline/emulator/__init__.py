"""A local, faithful emulator of the Scenario API for the LTX-2 video-to-video model (and a few other models).

    from pipeline.emulator import Emulator, EmulatorServer

    async with EmulatorServer(Emulator(job_time_s=0.2, fault_5xx_rate=0.1)) as server:
        server.url              # http://127.0.0.1:<ephemeral port>
        server.emulator.stats() # the /_emulator/stats figures, in-process

Modules: `knobs` (EmulatorKnobs), `service` (Emulator: the account's state, jobs,
guards, from `guards`) with `library` (assets, outputs, CDN URLs) and `desk` (multipart uploads),
`server` (EmulatorServer), `app` (middleware) and the routes: `routes_api`,
`routes_uploads`, `routes_cdn`, `routes_control`, with `wire` (shared helpers).
Pure parts: `jobs` (lazy job timeline), `jobjson`, `listing` (GET /v1/jobs rules),
`model` (GET /v1/models: the built-in model, `catalog`'s and the listings), `pricing` (CU), `gates` (429s, plan, CU cap), `multipart`
(upload states and checks), `s3` (presigned part URLs), `assets`, `media` (bytes as
segments, MP4 boxes), `cdn` (signed URLs, Range), `faults`, `access` (Basic auth,
rate limit), `validation`, `uploads` (base64 image bodies), `clock`, `stats`,
`replies`; `spool` holds the part files on disk.
"""

from pipeline.emulator.knobs import EMULATOR_API_KEY, EMULATOR_API_SECRET, FAULT_KINDS, EmulatorKnobs
from pipeline.emulator.server import EmulatorServer
from pipeline.emulator.service import Emulator

__all__ = [
    "EMULATOR_API_KEY",
    "EMULATOR_API_SECRET",
    "FAULT_KINDS",
    "Emulator",
    "EmulatorKnobs",
    "EmulatorServer",
]
