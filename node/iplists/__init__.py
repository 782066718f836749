"""IP lists: deny / gray / allow / exception entries (IP or CIDR, v4 and v6) with history."""

import os

from node.iplists.lists import NOT_LISTED, PRECEDENCE, IPLists, ListVerdict, SessionDenials
from node.iplists.matcher import (
    IPKey,
    NetKey,
    NetMatcher,
    canonical_network,
    format_ip,
    parse_ip,
    parse_network,
)
from node.iplists.store import LISTS, Entry, HistoryEvent, IPListStore

DB_NAME = "iplists.sqlite3"


def db_path(state_dir: str) -> str:
    return os.path.join(state_dir, DB_NAME)


__all__ = [
    "DB_NAME", "LISTS", "NOT_LISTED", "PRECEDENCE", "Entry", "HistoryEvent", "IPKey",
    "IPListStore", "IPLists", "ListVerdict", "NetKey", "NetMatcher", "SessionDenials",
    "canonical_network", "db_path", "format_ip", "parse_ip", "parse_network",
]
