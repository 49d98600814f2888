-- Local deployments load when a call names them and unload when idle: what each one serves, how
-- long it may sit idle, whether it is pinned, and the vision projector it loads with.
ALTER TABLE instances ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat';
ALTER TABLE instances ADD COLUMN mmproj_path TEXT;
ALTER TABLE instances ADD COLUMN idle_ttl_s INTEGER NOT NULL DEFAULT 600;
ALTER TABLE instances ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
