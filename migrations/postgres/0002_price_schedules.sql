-- Prices that change with the prompt's length (tiers) or the time of day (peak hours), as in
-- SQLite's 0012.
ALTER TABLE prices ADD COLUMN tiers_json TEXT;
ALTER TABLE prices ADD COLUMN peak_json TEXT;
