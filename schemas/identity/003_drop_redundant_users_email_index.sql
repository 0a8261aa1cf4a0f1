-- transactional: false
-- The UNIQUE constraint on users.email already keeps a btree on email (users_email_key), which
-- serves every lookup by email; idx_users_email was a second copy to write on every sign-up.
-- dbtool: ignore drop-in-up redundant with users_email_key, restored by the down file
DROP INDEX CONCURRENTLY IF EXISTS idx_users_email;
