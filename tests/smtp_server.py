"""A loopback SMTP server for marsad's delivery tests, built on aiosmtpd.

It accepts mail into <dir>/mail/new/ (one file per message, like a Maildir) and records each
message's envelope recipients in <dir>/rcpt/, or misbehaves on purpose:

  --mode ok      accept every message (the default)
  --mode 451     answer DATA with 451 (a temporary failure: the client should retry later)
  --mode 550     answer RCPT with 550 (a permanent failure: retrying cannot help)
  --mode drop    close the connection in the middle of the session, after DATA

TLS: --starttls CERT KEY offers (and requires) STARTTLS; --smtps CERT KEY speaks implicit TLS.
--auth USER PASSWORD_FILE requires AUTH PLAIN/LOGIN with that user and password.

Usage: python3 tests/smtp_server.py --port PORT --dir DIR [options]
"""

import argparse
import asyncio
import os
import ssl
import sys
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, directory, mode):
        self.directory = directory
        self.mode = mode
        for sub in ("mail/new", "mail/cur", "mail/tmp", "rcpt"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "550":
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "451":
            return "451 4.3.0 Temporary local problem, try again later"
        if self.mode == "drop":
            server.transport.close()
            return "421 closing"
        name = uuid.uuid4().hex
        tmp = os.path.join(self.directory, "mail/tmp", name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        with open(os.path.join(self.directory, "rcpt", name), "w") as f:
            f.write("\n".join(envelope.rcpt_tos))
        os.rename(tmp, os.path.join(self.directory, "mail/new", name))
        return "250 Message accepted for delivery"


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", choices=["ok", "451", "550", "drop"], default="ok")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD_FILE"))
    args = p.parse_args()

    kwargs = {}
    if args.starttls:
        kwargs["tls_context"] = tls_context(*args.starttls)
        kwargs["require_starttls"] = True
    if args.smtps:
        kwargs["ssl_context"] = tls_context(*args.smtps)
    if args.auth:
        user = args.auth[0].encode()
        with open(args.auth[1], "rb") as f:
            password = f.read().rstrip(b"\r\n")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user and auth_data.password == password
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        # Plain-text AUTH is only offered over TLS unless a test asks otherwise.
        kwargs["auth_require_tls"] = bool(args.starttls or args.smtps)

    controller = Controller(
        Handler(args.dir, args.mode), hostname="127.0.0.1", port=args.port, **kwargs
    )
    controller.start()
    print("READY", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
