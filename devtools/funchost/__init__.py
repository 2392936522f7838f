"""A small local Azure Functions host (the Core Tools `func` cannot be installed here).

It loads a Python v2 programming-model app (`module:attribute`, default `function_app:app`), reads its
functions once through the `azure.functions` decorator metadata, and runs them as the Azure host does:

- HTTP triggers on 127.0.0.1 under `extensions.http.routePrefix` (default `api`), ASP.NET route templates,
  function keys from `FUNCTIONS_HOST_KEYS`, and the admin API `POST /admin/functions/{name}`.
- Queue triggers against the storage account of the binding's connection (identity-based or connection
  string), with the Storage Queues extension's semantics from host.json `extensions.queues`: base64 messages,
  batches, dequeue count, poison queue, visibility timeout, polling back-off.
- Timer triggers on NCRONTAB schedules (six fields), `run_on_startup`.

Environment and settings read:
- `local.settings.json`-style `Values` (optional `settings_file`) go into os.environ where not already set.
- `%NAME%` in queue names and schedules: the app setting NAME (missing: load error naming it).
- `<connection>` / `<connection>__queueServiceUri|__serviceUri|__accountName`, `__credential`, `__clientId`.
- `FUNCTIONS_HOST_KEYS`: comma-separated keys accepted for function- and admin-level routes and the admin API.
- `AzureFunctionsJobHost__<path>`: overrides a host.json value (e.g. `..._extensions__queues__batchSize`).
- `FUNCHOST_MAX_POLLING_INTERVAL_MS`: caps `maxPollingInterval` (tests, demo: an empty queue is re-polled
  within this many milliseconds instead of up to a minute).
- `PYTHON_THREADPOOL_THREAD_COUNT`: threads for sync functions (as the Python worker).
- `WEBSITE_TIME_ZONE`: IANA zone for schedules (default UTC).

    with FunctionHost("function_app:app", root=Path(".")) as host:
        requests.get(host.http_url + "/api/v1/requests/123")

Command line: `python -m devtools.funchost --help`.
"""

from devtools.funchost.config import ConfigError
from devtools.funchost.functions import LoadError, configure_logging
from devtools.funchost.host import FunctionHost, FunctionTimeoutError

__all__ = ["ConfigError", "FunctionHost", "FunctionTimeoutError", "LoadError", "configure_logging"]
