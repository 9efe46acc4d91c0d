-- Lists, polls and dispatch read no request bodies: what they show of the request lives in
-- its own small columns. Deaths count attempts that ended without an outcome (lease expired,
-- node restarted while running), so that a job that kills its nodes is dead-lettered.
ALTER TABLE jobs ADD COLUMN transcript TEXT;                  -- poseidon | keccak; NULL: keygen
ALTER TABLE jobs ADD COLUMN input_jobs TEXT NOT NULL DEFAULT '[]';  -- aggregate: JSON array of job ids
ALTER TABLE jobs ADD COLUMN deaths INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN vk_hash TEXT;                     -- succeeded: the result's verifying key
UPDATE jobs SET transcript = CASE
    WHEN kind = 'aggregate' THEN CASE WHEN json_extract(request, '$.final') THEN 'keccak' ELSE 'poseidon' END
    ELSE COALESCE(json_extract(request, '$.transcript'), 'poseidon') END;
UPDATE jobs SET input_jobs = COALESCE((SELECT json_group_array(json_extract(value, '$.job'))
    FROM json_each(jobs.request, '$.inputs') WHERE json_extract(value, '$.job') IS NOT NULL), '[]')
    WHERE kind = 'aggregate';
CREATE INDEX jobs_fair_queue ON jobs (status, tenant, priority DESC, seq);
CREATE INDEX job_attempts_ended ON job_attempts (ended_ms);
CREATE INDEX api_keys_created ON api_keys (created_ms);
