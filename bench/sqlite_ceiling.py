#!/usr/bin/env python3
"""The ceiling of the coupon claim writes on SQLite, without HTTP or Rust:
the commerce migrations' tables, the multi-row issue statement the store uses
(ADR 0012) with ids and codes ordered by issue time as the server makes them
(ADR 0013), the writer's pragmas and synchronous=FULL, one transaction per
batch, on one thread. Arguments are prepared before the clock starts.

Usage: python3 bench/sqlite_ceiling.py [BATCH] [ROWS] [USERS]
(from the repository root; writes a scratch database under /tmp)."""
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid

BATCH = int(sys.argv[1]) if len(sys.argv) > 1 else 128
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 60_000
USERS = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RATE = 20_000
START_MILLIS = int(time.time() * 1000)
MIGRATIONS = "crates/commerce/migrations/sqlite"

folder = tempfile.mkdtemp(prefix="sqlite-ceiling-")
db = sqlite3.connect(os.path.join(folder, "ceiling.db"), isolation_level=None)
for pragma in ("journal_mode=wal", "synchronous=FULL", "cache_size=-65536",
               "temp_store=memory"):
    db.execute("pragma " + pragma)
for migration in sorted(os.listdir(MIGRATIONS)):
    db.executescript(open(os.path.join(MIGRATIONS, migration)).read())
campaign = uuid.uuid4().bytes
db.execute("insert into coupon_campaigns values (?,?,?,?,?,?,?,?,?,?,?)",
           (campaign, "ceiling", "PERCENT", 10, None, 10**9, 10**6,
            "2026-11-30T00:00:00.000000Z", "2026-12-01T00:00:00.000000Z",
            "2026-12-30T00:00:00.000000Z", "2026-11-30T00:00:00.000000Z"))
users = [uuid.uuid4().bytes for _ in range(USERS)]
values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * BATCH)
statement = (
    "with fresh as materialized (select v.column1 as id, v.column2 as code, "
    "c.id as campaign_id, v.column3 as user_id, v.column4 as status, "
    "v.column5 as issued_at, v.column6 as expires_at, "
    "c.per_user_limit as per_user_limit, "
    "coalesce((select max(h.ordinal) from coupons h "
    "where h.campaign_id = c.id and h.user_id = v.column3), 0) as held "
    f"from (values {values}) v join coupon_campaigns c on c.id = v.column7) "
    "insert or ignore into coupons (id, code, campaign_id, user_id, ordinal, status, "
    "issued_at, expires_at, updated_at) "
    "select id, code, campaign_id, user_id, held + 1, status, issued_at, expires_at, issued_at "
    "from fresh where held < per_user_limit")


def code(millis):
    """As the server makes them: tenths of a second modulo 31**3 in three
    characters, then 17 random ones (ADR 0013)."""
    tenths, prefix = millis // 100 % 31**3, ""
    for _ in range(3):
        prefix = ALPHABET[tenths % 31] + prefix
        tenths //= 31
    return prefix + "".join(random.choices(ALPHABET, k=17))



batches, n = [], 0
for _ in range(ROWS // BATCH):
    arguments = []
    for _ in range(BATCH):
        # Ids are UUID v7 (time first) and codes time-prefixed, as issued at
        # RATE claims per second from now.
        millis = START_MILLIS + n * 1000 // RATE
        arguments += [millis.to_bytes(6, "big") + os.urandom(10), code(millis),
                      users[n % USERS], "ACTIVE", "2026-11-30T00:00:00.000000Z",
                      "2026-12-30T00:00:00.000000Z", campaign]
        n += 1
    batches.append(arguments)
started = time.time()
for arguments in batches:
    db.execute("begin immediate")
    before = db.total_changes
    db.execute(statement, arguments)
    written = db.total_changes - before
    db.execute("commit")
    assert written == BATCH, written
elapsed = time.time() - started
print(f"batch {BATCH}: {len(batches) * BATCH / elapsed:,.0f} durable rows/s")
