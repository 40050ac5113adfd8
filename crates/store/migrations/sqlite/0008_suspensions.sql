-- Automatic suspensions (DO-1): a key that trips too many guard blocks or denials is switched
-- off for a while, as a kill switch that lifts itself. NULL: a switch that stays on until it
-- is cleared (every switch set by a person).
ALTER TABLE kill_switches ADD COLUMN expires_at BIGINT;
