-- Offer decisions that run inside PostgreSQL: accepting an offer and completing an interaction,
-- one call each, and the state an agent's holdings call for. Called from app/routing/decisions.py.
--
-- This file is the one current definition of these rules: `contactcenter db upgrade` (and so
-- every `serve`) runs it again after the versioned migrations, whenever the database reaches
-- head. Edit it here, never in a migration; app/core/definitions.py says how to change a
-- function's arguments or result.
--
-- Each function runs the statements the Python would, in the same lock order (the agent, then
-- the interaction, then the offer): one call, autocommitted. Each statement in a PL/pgSQL
-- function sees what committed before it started, as separate statements in one transaction
-- do, so the state read after a lock is current. A refused call writes nothing and returns no
-- rows; the caller then reads why. Payloads the caller knows come in as parameters, so their
-- shape is defined once, in Python.

-- The state an agent's holdings call for: wrap_up after a call, busy while holding any work,
-- available when free. Written only when it differs; returns the new state, or NULL.
CREATE OR REPLACE FUNCTION routing_refresh_agent(p_agent uuid, p_at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    WITH held AS (
        SELECT
            EXISTS (SELECT 1 FROM interactions WHERE agent_id = p_agent AND state = 'wrap_up'
                    AND channel IN ('voice', 'callback')) AS in_wrap_up,
            EXISTS (SELECT 1 FROM interactions WHERE agent_id = p_agent
                    AND state IN ('assigned', 'wrap_up'))
            OR EXISTS (SELECT 1 FROM offers WHERE agent_id = p_agent AND state = 'pending')
                AS holds
    ), wanted AS (
        SELECT CASE WHEN in_wrap_up THEN 'wrap_up' WHEN holds THEN 'busy' ELSE 'available' END
            AS state
        FROM held
    )
    UPDATE agents a
    SET state = wanted.state, state_reason = NULL, state_since = p_at, updated_at = p_at,
        idle_since = CASE WHEN wanted.state = 'available' AND a.state <> 'available' THEN p_at
                          ELSE a.idle_since END
    FROM wanted
    WHERE a.id = p_agent AND (a.state <> wanted.state OR a.state_reason IS NOT NULL)
    RETURNING wanted.state INTO changed;
    RETURN changed;
END;
$$;

-- Both return the events they wrote, for the caller to hand to its replica's hub. offer.accepted
-- gets the interaction's id here, the one part of its payload the caller lacks. routing_accept
-- also returns the interaction it assigned, as JSON beside the `interaction.assigned` event
-- (`event_attached`), for the desk's assignment frame: written in UTC (the function's own
-- TimeZone) so that it reads back as the same instants as a row read by the driver.
CREATE OR REPLACE FUNCTION routing_accept(
    p_agent uuid, p_offer uuid, p_at timestamptz, p_actor text,
    p_accepted jsonb, p_assigned jsonb, p_busy jsonb
) RETURNS TABLE (event_id bigint, event_kind text, event_subject_type text,
                 event_subject_id text, event_payload text, event_attached text)
LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
    agent_state text;
    taken uuid;
    assigned jsonb;
BEGIN
    SELECT a.state INTO agent_state FROM agents a WHERE a.id = p_agent FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT o.interaction_id INTO taken FROM offers o
    WHERE o.id = p_offer AND o.agent_id = p_agent AND o.state = 'pending';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM FROM interactions i WHERE i.id = taken AND i.state = 'offered' FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE offers o SET state = 'accepted', decided_at = p_at
    WHERE o.id = p_offer AND o.state = 'pending' AND o.deadline > p_at;
    IF NOT FOUND THEN  -- nothing written yet: the interaction was only locked
        RETURN;
    END IF;
    UPDATE interactions i
    SET state = 'assigned', agent_id = p_agent, assigned_at = p_at, updated_at = p_at
    WHERE i.id = taken
    RETURNING to_jsonb(i) INTO assigned;
    -- The wait this answer ends, for the figures (docs/metrics.md): whose line it left, and
    -- how long it waited there (from its `waiting_since`, kept through rejected offers).
    p_assigned := p_assigned || jsonb_build_object(
        'queue_id', assigned ->> 'queue_id',
        'channel', assigned ->> 'channel',
        'waited_seconds', round(extract(epoch FROM
            p_at - (assigned ->> 'waiting_since')::timestamptz)::numeric, 3));
    -- Holding work now: an available agent becomes busy (wrap-up and away stay as they are).
    IF agent_state = 'available' THEN
        UPDATE agents a SET state = 'busy', state_reason = NULL, state_since = p_at,
                            updated_at = p_at
        WHERE a.id = p_agent;
    END IF;
    RETURN QUERY
    WITH written AS (
        INSERT INTO events AS e (occurred_at, kind, subject_type, subject_id, actor, payload)
        SELECT p_at, n.kind, n.subject_type, n.subject_id, p_actor, n.payload
        FROM (VALUES
            (1, 'offer.accepted', 'offer', p_offer::text,
             p_accepted || jsonb_build_object('interaction_id', taken::text)),
            (2, 'interaction.assigned', 'interaction', taken::text, p_assigned),
            (3, 'agent.state_changed', 'agent', p_agent::text, p_busy)
        ) AS n(ord, kind, subject_type, subject_id, payload)
        WHERE n.ord < 3 OR agent_state = 'available'
        ORDER BY n.ord
        RETURNING e.id, e.kind, e.subject_type, e.subject_id, e.payload
    )
    SELECT w.id, w.kind::text, w.subject_type::text, w.subject_id::text, w.payload::text,
           CASE WHEN w.kind = 'interaction.assigned' THEN assigned::text END
    FROM written w;
END;
$$;

-- agent.state_changed is built here: which state the agent left and entered is known only
-- under its lock. Its shape is that of state_payload in app/routing/decisions.py.
CREATE OR REPLACE FUNCTION routing_complete(
    p_agent uuid, p_interaction uuid, p_at timestamptz, p_actor text,
    p_disposition text, p_notes text, p_moved jsonb
) RETURNS TABLE (event_id bigint, event_kind text, event_subject_type text,
               event_subject_id text, event_payload text)
LANGUAGE plpgsql AS $$
DECLARE
    agent_state text;
    target text;
    changed text;
BEGIN
    SELECT a.state INTO agent_state FROM agents a WHERE a.id = p_agent FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE interactions i
    SET state = CASE WHEN q.wrap_up_seconds > 0 THEN 'wrap_up' ELSE 'completed' END,
        wrap_up_at = CASE WHEN q.wrap_up_seconds > 0 THEN p_at ELSE i.wrap_up_at END,
        ended_at = CASE WHEN q.wrap_up_seconds > 0 THEN i.ended_at ELSE p_at END,
        updated_at = p_at, disposition = p_disposition, notes = p_notes
    FROM queues q
    WHERE i.id = p_interaction AND q.id = i.queue_id AND i.agent_id = p_agent
      AND i.state = 'assigned'
    RETURNING i.state INTO target;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- away and offline stay as they are; the routable states follow what the agent holds.
    IF agent_state IN ('available', 'busy', 'wrap_up') THEN
        changed := routing_refresh_agent(p_agent, p_at);
    END IF;
    RETURN QUERY
    INSERT INTO events AS e (occurred_at, kind, subject_type, subject_id, actor, payload)
    SELECT p_at, n.kind, n.subject_type, n.subject_id, p_actor, n.payload
    FROM (VALUES
        (1, 'interaction.' || target, 'interaction', p_interaction::text, p_moved),
        (2, 'agent.state_changed', 'agent', p_agent::text,
         jsonb_build_object('from', agent_state, 'to', changed, 'reason', NULL))
    ) AS n(ord, kind, subject_type, subject_id, payload)
    WHERE n.ord = 1 OR changed IS NOT NULL
    ORDER BY n.ord
    RETURNING e.id, e.kind::text, e.subject_type::text, e.subject_id::text, e.payload::text;
END;
$$;
