-- The id of the row a keyed request creates, reserved with the key and kept
-- across a takeover; `released` marks a claim whose request answered 5xx
-- (it may have made its effect), which a retry takes over at once.
alter table idempotency_keys add column effect_id blob;
alter table idempotency_keys add column released boolean not null default false;
