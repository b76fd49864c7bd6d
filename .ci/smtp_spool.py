"""The SMTP server CI runs for the e-mail tests: aiosmtpd, spooling each message as JSON.

Usage: smtp_spool.py HOST PORT SPOOL_DIR. A message is written (then renamed into place)
before the server answers 250, so once the service's SMTP client has its answer, the file is
there for the test to read.
"""

import asyncio
import itertools
import json
import os
import sys

from aiosmtpd.controller import Controller


class Spool:
    def __init__(self, directory):
        self.directory = directory
        # File names in arrival order (timestamps may tie).
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        message = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "data": envelope.original_content.decode("utf-8", "replace"),
        }
        name = f"{next(self.numbers):012d}"
        tmp = os.path.join(self.directory, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(message, f)
        os.rename(tmp, os.path.join(self.directory, name + ".json"))
        return "250 OK"


async def main(host, port, directory):
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Spool(directory), hostname=host, port=int(port))
    controller.start()
    print(f"smtp spool listening on {host}:{port}, writing to {directory}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
