-- What a succeeded job's proof shows beyond its vk hash, kept with the row so that polls read
-- no proof: the EVM gas of a final (keccak) aggregate or epoch proof's Solidity verifier
-- (NULL: not measured, e.g. no solc on the node), and an epoch proof's decoded public values.
ALTER TABLE jobs ADD COLUMN evm_gas BIGINT;
ALTER TABLE jobs ADD COLUMN epoch_values TEXT;
