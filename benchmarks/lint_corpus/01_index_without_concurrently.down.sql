DROP INDEX idx_users_name;
