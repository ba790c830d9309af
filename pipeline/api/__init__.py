"""Scenario's API as we speak it: the client, what its answers mean, and how fast we may ask.

`client` (ApiClient: auth, every call, retries), `listing` (every page of one `GET /v1/jobs`), `answers` (pure: an HTTP status or a job answer to
our exceptions and `JobView`), `uploads` and `parts` (the multipart upload flow), `budget` (the
account's shared request budget with priorities), `pacing` (the rate after 429s, pure), `retry`
(backoff and Retry-After, pure), `connectivity` (the circuit breaker), `models` (a model's description and
the model listings) with `model_cache` (descriptions cached per user and API key, with their fetch time).

Knows nothing of queues, the journal or the run folder.
May import: the top-level modules (`pipeline.errors`, `pipeline.config`, `pipeline.spec`).
"""
