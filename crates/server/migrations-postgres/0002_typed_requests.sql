-- Lists, polls and dispatch read no request bodies: what they show of the request lives in
-- its own small columns. Deaths count attempts that ended without an outcome (lease expired,
-- node restarted while running), so that a job that kills its nodes is dead-lettered.
ALTER TABLE jobs ADD COLUMN transcript TEXT;
ALTER TABLE jobs ADD COLUMN input_jobs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN deaths BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN vk_hash TEXT;
UPDATE jobs SET transcript = CASE
    WHEN kind = 'aggregate' THEN CASE WHEN (request::json->>'final')::boolean THEN 'keccak' ELSE 'poseidon' END
    ELSE COALESCE(request::json->>'transcript', 'poseidon') END;
UPDATE jobs SET input_jobs = COALESCE((SELECT json_agg(e->>'job')::text
    FROM json_array_elements(jobs.request::json->'inputs') AS e WHERE e->>'job' IS NOT NULL), '[]')
    WHERE kind = 'aggregate';
CREATE INDEX jobs_fair_queue ON jobs (status, tenant, priority DESC, seq);
CREATE INDEX job_attempts_ended ON job_attempts (ended_ms);
