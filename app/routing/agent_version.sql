-- agents.routing_version: moves whenever routing could count on the row wrongly.
--
-- This file is the one current definition of the rule: `contactcenter db upgrade` (and so every
-- `serve`) runs it again after the versioned migrations, whenever the database reaches head.
-- Edit it here, never in a migration (app/core/definitions.py).
--
-- Offers are written against an agent row as routing last read it, and land only while its
-- routing_version is unchanged since. It moves with every offer written (their writers move it
-- themselves, under the row lock) and, through this trigger, with capacity, skills
-- (skills_version), idle time, and any change of state other than between available and busy
-- (wrap-up takes no call; away and offline take nothing). Accepting a first offer (available to
-- busy) changes nothing routing counts on, and a load that only went down (a completion) is
-- left alone: counting on a higher load is never over capacity.

CREATE OR REPLACE FUNCTION agents_move_routing_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.routing_version := OLD.routing_version + 1;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER agents_routing_version BEFORE UPDATE ON agents FOR EACH ROW
WHEN (
    OLD.capacity_voice IS DISTINCT FROM NEW.capacity_voice
    OR OLD.capacity_chat IS DISTINCT FROM NEW.capacity_chat
    OR OLD.capacity_email IS DISTINCT FROM NEW.capacity_email
    OR OLD.skills_version IS DISTINCT FROM NEW.skills_version
    OR OLD.idle_since IS DISTINCT FROM NEW.idle_since
    OR (OLD.state IS DISTINCT FROM NEW.state
        AND NOT (OLD.state IN ('available', 'busy') AND NEW.state IN ('available', 'busy')))
)
EXECUTE FUNCTION agents_move_routing_version();
