"""Blackboard: the names of "Download Assignment" (Grade Centre), attempts and receipts.

Each attempt of each student is ``<assignment>_<user name>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>``,
with a receipt ``<assignment>_<user name>_attempt_<time>.txt`` that says who submitted when::

    Name: Jane Doe (jdoe)
    Assignment: 02 Convolution
    Date Submitted: Wednesday, 1 October 2025 12:00:00 o'clock BST

The time in the name is the server's local time (``--timezone`` of ``cnnlab collect``); every
attempt is in the download, the latest one counts.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from .base import STUDENT_RE, Attribution, slugify

NAME = "blackboard"
ATTEMPT_RE = re.compile(
    r"^(?P<prefix>.+)_attempt_(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})(?:_(?P<file>.+)|(?P<receipt>\.txt))$")
RECEIPT_NAME_RE = re.compile(r"^\s*Name:\s*(?P<name>.*?)\s*\((?P<user>[^()]+)\)\s*$", re.MULTILINE)


def parse(parts: list[str], timezone: str = "UTC", receipts: dict | None = None
          ) -> Attribution | None:
    """``receipts``: ``{"<prefix>_attempt_<time>": (full name, user name)}`` read from the .txt
    receipts, which settle user names holding an underscore."""
    if len(parts) != 1:
        return None
    m = ATTEMPT_RE.match(parts[0])
    if not m:
        return None
    file = m["file"]
    stem = file.rsplit(".", 1)[0] if file and "." in file else (file or "")
    ts = datetime.strptime(m["ts"], "%Y-%m-%d-%H-%M-%S").replace(tzinfo=ZoneInfo(timezone))
    who = (receipts or {}).get(f"{m['prefix']}_attempt_{m['ts']}")
    user = who[1] if who and m["prefix"].endswith("_" + who[1]) else m["prefix"].rsplit("_", 1)[-1]
    slug = user if STUDENT_RE.match(user) else (slugify(user) or user)
    return Attribution(lms=NAME, key=user, slug=slug,
                       display_name=who[0] if who else user, file_stem=stem,
                       attempt=(ts,), attempt_label=f"attempt {m['ts']}", submitted_at=ts,
                       receipt=bool(m["receipt"]))


def read_receipt(text: str) -> tuple[str, str] | None:
    """(full name, user name) from a receipt's ``Name: Jane Doe (jdoe)`` line."""
    m = RECEIPT_NAME_RE.search(text)
    return (m["name"], m["user"].strip()) if m else None
