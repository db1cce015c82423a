-- A version of the queues' routing settings that changes whenever any queue row is written
-- (`xmin` is new on every write): routing keeps the queues' settings between reads while it
-- stays the same, and reads it with the waiting work and with each arrival's look-up. A view,
-- so that the planner inlines it into those statements (a function that reads a table would
-- be called, at a cost, on every use).
CREATE OR REPLACE VIEW queues_settings_version AS
SELECT md5(string_agg(q.id::text || ':' || q.xmin::text, ',' ORDER BY q.id)) AS version
FROM queues q;
