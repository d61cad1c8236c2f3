-- The checks row holds the state machine only: it is written when the state, the failure
-- count or the last error moves, not on every good probe, so a steady check costs one INSERT
-- into check_results per probe. The time of the last result is read from check_results.
-- Keep in step with ../sqlite/0004_check_state_only.sql.
ALTER TABLE checks DROP COLUMN consecutive_successes;
ALTER TABLE checks DROP COLUMN last_result_ms;
