-- Several daemons sharing one database lease due sources and pending digests: the holder and
-- until when. An expired lease may be taken over (the holder crashed).
ALTER TABLE sources ADD COLUMN lease_owner TEXT;
ALTER TABLE sources ADD COLUMN lease_until TEXT;
ALTER TABLE digest_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE digest_runs ADD COLUMN lease_until TEXT;
