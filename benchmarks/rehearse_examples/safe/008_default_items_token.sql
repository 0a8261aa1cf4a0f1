-- The default for new rows only: no rewrite; old rows are backfilled in batches by the application.
ALTER TABLE items ALTER COLUMN token SET DEFAULT gen_random_uuid();
