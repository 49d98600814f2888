-- Prices by unit beside the token prices (images drawn, seconds of audio heard, characters
-- spoken), and each call's units in its log row. NULL price: the unit is not charged.
ALTER TABLE prices ADD COLUMN image_nano INTEGER;
ALTER TABLE prices ADD COLUMN audio_second_nano INTEGER;
ALTER TABLE prices ADD COLUMN million_chars_nano INTEGER;
ALTER TABLE logs ADD COLUMN images INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN audio_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN characters INTEGER NOT NULL DEFAULT 0;
