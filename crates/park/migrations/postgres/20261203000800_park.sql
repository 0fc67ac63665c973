-- The park: attractions, their hashtags, and one waiting line each.

-- An attraction. `line_seq` is the last join number handed out in its
-- line: a join bumps it in its own transaction (on PostgreSQL the update
-- locks the row, so joins to one line take numbers in commit order).
create table attractions (
    id uuid primary key,
    name text not null,
    kind text not null,
    description text not null,
    status text not null,
    capacity_per_cycle bigint not null check (capacity_per_cycle >= 1),
    cycle_seconds bigint not null check (cycle_seconds >= 1),
    line_seq bigint not null default 0,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create index attractions_kind_status on attractions (kind, status, id);

-- A hashtag, normalised (lower-case, no `#`), with the number of
-- attractions carrying it, kept in the transaction that tags or untags.
-- Byte order (`collate C`) so a prefix is a range of the primary key.
create table hashtags (
    tag text collate "C" primary key,
    attraction_count bigint not null check (attraction_count >= 0)
);
create index hashtags_most_used on hashtags (attraction_count desc, tag);

-- Which attraction carries which tag. The primary key serves the all-of
-- search (tag first); the second index serves "the tags of these".
create table attraction_hashtags (
    tag text collate "C" not null references hashtags (tag),
    attraction_id uuid not null references attractions (id),
    primary key (tag, attraction_id)
);
create index attraction_hashtags_by_attraction on attraction_hashtags (attraction_id, tag);

-- One party in one attraction's line: the record of who joined, was
-- called, admitted, left or expired. `seq` is the join number within the
-- attraction; the position of a WAITING entry is 1 + the WAITING entries
-- with a smaller one.
create table line_entries (
    id uuid primary key,
    attraction_id uuid not null references attractions (id),
    user_id uuid not null,
    party_size bigint not null check (party_size >= 1),
    status text not null,
    seq bigint not null,
    joined_at timestamptz not null,
    called_at timestamptz,
    return_by timestamptz,
    admitted_at timestamptz,
    ended_at timestamptz
);
create unique index line_entries_seq on line_entries (attraction_id, seq);
-- One active entry per user per attraction.
create unique index line_entries_one_active on line_entries (attraction_id, user_id)
    where status in ('WAITING', 'CALLED');
create index line_entries_active_by_user on line_entries (user_id)
    where status in ('WAITING', 'CALLED');
create index line_entries_waiting on line_entries (attraction_id, seq)
    where status = 'WAITING';
create index line_entries_called_due on line_entries (return_by)
    where status = 'CALLED';
create index line_entries_admitted on line_entries (attraction_id, admitted_at)
    where status = 'ADMITTED';
