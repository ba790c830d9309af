"""ltx-batch: crash-safe batch runs of Scenario's LTX-2 19B video-to-video model."""

__version__ = "0.1.0"
