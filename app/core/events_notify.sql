-- Every event written wakes the listeners (each replica's hub) with a NOTIFY carrying its id,
-- which PostgreSQL sends only at commit.
--
-- This file is the one current definition of the rule: `contactcenter db upgrade` (and so every
-- `serve`) runs it again after the versioned migrations, whenever the database reaches head.
-- Edit it here, never in a migration (app/core/definitions.py).
--
-- The NOTIFY takes PostgreSQL's one global lock on the notification queue from just before the
-- commit until the commit record is flushed, so every transaction that wrote an event would
-- wait for the flush of the one before it: no group commit. A session that sets `cc.notify` to
-- `off` (the app's hot paths, whose hub hands their events over itself and announces them to
-- the other replicas with one NOTIFY per batch, outside any writing transaction) commits
-- without it. Every other session (the admin API, psql, another program) notifies per event.

CREATE OR REPLACE FUNCTION notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cc_events', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW
WHEN (current_setting('cc.notify', true) IS DISTINCT FROM 'off')
EXECUTE FUNCTION notify_event();
