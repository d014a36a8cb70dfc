"""python -m sandbox --token T --drive-id UUID --partner-import-url URL [--host H --port P]"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import uuid

from .app import SandboxConfig
from .server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--token", required=True, help="the API token partners must send")
    parser.add_argument("--drive-id", required=True, help="the partner drive id (uuid)")
    parser.add_argument(
        "--partner-import-url",
        required=True,
        help="partner landing for one-click export, e.g. http://127.0.0.1:8000/descript/import/new",
    )
    parser.add_argument("--render-seconds", type=float, default=5.0)
    parser.add_argument("--public-url", default="", help="base URL if served behind a proxy")
    args = parser.parse_args(argv)
    try:
        uuid.UUID(args.drive_id)
    except ValueError:
        parser.error("--drive-id must be a UUID")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = SandboxConfig(
        api_token=args.token,
        drive_id=args.drive_id,
        partner_import_url=args.partner_import_url,
        render_seconds=args.render_seconds,
        public_url=args.public_url.rstrip("/"),
    )
    server = SandboxServer(config, host=args.host, port=args.port, log_requests=True)
    server.bind()

    def _stop(signum: int, _frame: object) -> None:
        logging.getLogger("sandbox").info("signal %s: stopping", signum)
        # shutdown() blocks until serve_forever returns, so it cannot run on this thread.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    logging.getLogger("sandbox").info(
        "Descript sandbox on %s (drive %s, partner import %s)",
        config.public_url, config.drive_id, config.partner_import_url,
    )
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
