"""Command line: ``python -m orchestrator serve|migrate``."""

from __future__ import annotations

import argparse
import logging

from orchestrator import logs
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator")


def _migrate(settings: Settings) -> None:
    from orchestrator.db.migrate import upgrade

    upgrade(settings.database_url)
    log.info("database migrated")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m orchestrator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="apply migrations, then run the API")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    sub.add_parser("migrate", help="apply database migrations and exit")
    args = parser.parse_args(argv)

    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    _migrate(settings)
    if args.command == "serve":
        import uvicorn

        uvicorn.run(
            "orchestrator.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            # Our JSON logging is already configured; uvicorn must not replace it.
            log_config=None,
            proxy_headers=True,
        )


if __name__ == "__main__":
    main()
