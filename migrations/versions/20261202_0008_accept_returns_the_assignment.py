"""routing_accept also returns the interaction it assigned, for the desk's assignment frame

The assignment frame showed the interaction as the REST API does, read afresh for every
accept: one more round trip per interaction. The function has the row in hand after its update
and now returns it as JSON beside the `interaction.assigned` event (`event_attached`), written
in UTC (the function's own TimeZone) so that it reads back as the same instants as a row read
by the driver. Otherwise the function is 0006's.

The current routing_accept is in app/routing/decisions.sql (app/core/definitions.py), reapplied
after every upgrade: this is its history, not the rule.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:10:00
"""

from collections.abc import Sequence

from alembic import context, op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "routing_accept(uuid, uuid, timestamptz, text, jsonb, jsonb, jsonb)"

ACCEPT = """
CREATE FUNCTION routing_accept(
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
$$
"""


def upgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    op.execute(ACCEPT)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    # 0006's version, from 0006 itself, as Alembic loaded it (whatever the package is called).
    previous = context.script.get_revision("0006")
    assert previous is not None
    op.execute(previous.module.ACCEPT)
