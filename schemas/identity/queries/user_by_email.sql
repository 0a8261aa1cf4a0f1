-- Sign-in: one live user by email (the spec's idx_users_email case, section 4).
-- param email: SELECT email FROM users WHERE deleted_at IS NULL ORDER BY id LIMIT 1
-- budget: max_ms=20 no_seq_scan
SELECT id, email, password_hash, role, name, is_active, email_verified
FROM users
WHERE email = :email AND deleted_at IS NULL;
