-- A version of the queues' routing settings that changes whenever any queue row is written
-- (`xmin` is new on every write): routing keeps the queues' settings between reads while it
-- stays the same, and reads it with the waiting work and with each arrival's look-up.
CREATE OR REPLACE FUNCTION queues_settings_version() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT md5(string_agg(q.id::text || ':' || q.xmin::text, ',' ORDER BY q.id)) FROM queues q
$$;
