-- A new interaction of any channel, written with its `interaction.queued` event: the one write
-- of the one way in (app/interactions/intake.py). It is queued, or offered already when
-- p_offered is true: routing's offer writer (app/routing/offers.py) calls it in the statement
-- that writes an arrival's offer, so that an arrival offered at once costs one statement. A
-- channel reference delivered before writes nothing and returns no row (a concurrent delivery
-- of it won). JSON comes in as jsonb; the row goes back whole, as the table has it.
-- p_ivr: what the IVR learned (null: none); p_waiting_since: its place in the line, kept from
-- the call a callback replaces (null: p_at, its arrival); p_not_before: not offered before
-- then (null: at once). Those three arguments since migration 0020, which dropped the
-- function with 13. A channel of messages (intake's `Conversation`; null for others):
-- p_linked_to, the completed interaction a follow-up continues; p_reply_token, its thread's
-- token; p_first_message, the message it arrived with, stored already and attached here, so
-- that the offer this statement may write shows it. Those three since migration 0024, which
-- dropped the function with 16.
CREATE OR REPLACE FUNCTION interactions_arrive(
    p_id uuid, p_channel text, p_external_ref text, p_queue uuid, p_customer uuid,
    p_priority integer, p_needs jsonb, p_subject text, p_summary text, p_at timestamptz,
    p_actor text, p_payload jsonb, p_offered boolean, p_ivr jsonb,
    p_waiting_since timestamptz, p_not_before timestamptz, p_linked_to uuid, p_reply_token text,
    p_first_message uuid
) RETURNS TABLE (interaction interactions, queued_event_id bigint)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO interactions AS i (
        id, channel, external_ref, queue_id, customer_id, priority, needs, subject, summary,
        state, waiting_since, offered_at, created_at, updated_at, ivr, not_before, linked_to,
        reply_token
    )
    VALUES (
        p_id, p_channel, p_external_ref, p_queue, p_customer, p_priority, p_needs, p_subject,
        p_summary, CASE WHEN p_offered THEN 'offered' ELSE 'queued' END,
        coalesce(p_waiting_since, p_at), CASE WHEN p_offered THEN p_at END, p_at, p_at, p_ivr,
        p_not_before, p_linked_to, p_reply_token
    )
    ON CONFLICT ON CONSTRAINT uq_interactions_channel_external_ref DO NOTHING
    RETURNING i.* INTO interaction;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE interaction_messages SET interaction_id = p_id
    WHERE id = p_first_message AND interaction_id IS NULL;
    INSERT INTO events AS e (occurred_at, kind, subject_type, subject_id, actor, payload)
    VALUES (p_at, 'interaction.queued', 'interaction', p_id::text, p_actor, p_payload)
    RETURNING e.id INTO queued_event_id;
    RETURN NEXT;  -- the output columns as set: no query of their own
END;
$$;
