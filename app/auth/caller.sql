-- The caller of a hot-path request (app/auth/service.py `hot_principal_for_secret`, and intake's
-- look-up, which authenticates and does its work in one round trip): the user of a live login
-- token, or a gateway key not revoked, from the secret's digest and whether it is a key. No
-- row: nobody known. A key's last use is noted (p_at) at most once a minute (p_used_before: a
-- minute ago): written on every request, concurrent requests with one key would queue on that
-- row's lock.
CREATE OR REPLACE FUNCTION auth_caller(
    p_digest text, p_is_key boolean, p_at timestamptz, p_used_before timestamptz
) RETURNS TABLE (kind text, id uuid, name text, role text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF NOT p_is_key THEN
        RETURN QUERY
        SELECT 'user'::text, u.id, u.username::text, u.role::text
        FROM access_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_digest = p_digest AND t.expires_at > now() AND u.is_active;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT 'gateway'::text, k.id, k.name::text, NULL::text
    FROM gateway_keys k
    WHERE k.key_digest = p_digest AND k.revoked_at IS NULL;
    UPDATE gateway_keys k SET last_used_at = p_at
    WHERE k.key_digest = p_digest AND k.revoked_at IS NULL
      AND (k.last_used_at IS NULL OR k.last_used_at < p_used_before);
END;
$$;
