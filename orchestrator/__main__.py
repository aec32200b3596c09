"""Command line: ``python -m orchestrator serve|migrate|admin ...``."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

from orchestrator import logs
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator")


def _migrate(settings: Settings) -> None:
    from orchestrator.db.migrate import upgrade

    upgrade(settings.database_url)
    log.info("database migrated")


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["admin"]:
        from orchestrator import admin

        sys.exit(admin.run(given[1:]))
    parser = argparse.ArgumentParser(prog="python -m orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="apply migrations, then run the API and its internal tusd hook listener"
    )
    serve.add_argument("--host", default="0.0.0.0", help="public listener address")
    serve.add_argument("--port", type=int, default=8000, help="public listener port")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    sub.add_parser("migrate", help="apply database migrations and exit")
    sub.add_parser("admin", help="projects and API keys (orchestrator.admin)", add_help=False)
    args = parser.parse_args(argv)

    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    _migrate(settings)
    if args.command == "serve":
        _serve(settings, args.host, args.port, args.workers)


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """One app on two listeners: the public one and the internal one that alone serves
    /tusd_hook (``orchestrator.api.auth.listener_guard`` tells them apart by local port)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    def bind(bind_host: str, bind_port: int) -> socket.socket:
        return uvicorn.Config(
            "orchestrator.app:create_app", host=bind_host, port=bind_port
        ).bind_socket()

    sockets = [bind(host, port), bind(settings.hook_host, settings.hook_port)]
    config = uvicorn.Config(
        "orchestrator.app:create_app",
        factory=True,
        workers=workers,
        # Our JSON logging is already configured; uvicorn must not replace it.
        log_config=None,
        # No line per request: it was uvicorn's plain text, not our JSON, and cost about a
        # tenth of a query_task's CPU. orchestrator_http_requests_total counts them instead.
        access_log=False,
        proxy_headers=True,
    )
    log.info(
        "listening on %s:%d (public) and %s:%d (tusd hooks only)",
        host,
        port,
        settings.hook_host,
        settings.hook_port,
    )
    if workers > 1:
        Multiprocess(config, sockets=sockets).run()
    else:
        uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
