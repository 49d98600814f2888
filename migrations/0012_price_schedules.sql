-- Prices that change with the prompt's length (tiers) or the time of day (peak hours), each a
-- JSON document in the shape of the console API's `tiers` and `peak`. NULL: a flat price.
ALTER TABLE prices ADD COLUMN tiers_json TEXT;
ALTER TABLE prices ADD COLUMN peak_json TEXT;
