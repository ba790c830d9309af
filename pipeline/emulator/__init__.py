"""A local, faithful emulator of the Scenario API for the LTX-2 video-to-video model.

    from pipeline.emulator import Emulator, EmulatorServer

    async with EmulatorServer(Emulator(job_time_s=0.2, fault_5xx_rate=0.1)) as server:
        server.url              # http://127.0.0.1:<ephemeral port>
        server.emulator.stats() # the /_emulator/stats figures, in-process

Modules: `knobs` (EmulatorKnobs), `service` (Emulator: the account's state),
`app` (HTTP routes and middleware), `server` (EmulatorServer), `jobs` (lazy job
timeline), `assets`, `uploads` (reading upload bodies), `media` (output MP4 bytes), `cdn` (signed URLs, Range),
`faults`, `access` (Basic auth, rate limit), `validation` (generate requests),
`clock`, `stats`, `replies`.
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
