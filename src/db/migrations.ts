/**
 * Numbered schema migrations, applied in order inside one transaction each.
 * Never edit a released migration; append a new one.
 */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );

      CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL UNIQUE,
        secret_hash TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        -- balance in micro GB-months; NULL means unlimited
        balance_micro INTEGER CHECK (balance_micro IS NULL OR balance_micro >= 0),
        permissions TEXT NOT NULL DEFAULT '[]',
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_by INTEGER REFERENCES api_keys(id) ON DELETE SET NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      );

      CREATE TABLE dropzones (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        name TEXT,
        owner_key_id INTEGER REFERENCES api_keys(id) ON DELETE SET NULL,
        tier TEXT NOT NULL DEFAULT 'standard',
        hidden INTEGER NOT NULL DEFAULT 0,
        size_gb REAL NOT NULL,
        days REAL NOT NULL,
        max_size INTEGER NOT NULL,
        max_file_size INTEGER NOT NULL,
        used_space INTEGER NOT NULL DEFAULT 0 CHECK (used_space >= 0),
        start_time INTEGER NOT NULL,
        delete_time INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX dropzones_owner ON dropzones(owner_key_id, name);
      CREATE INDEX dropzones_delete_time ON dropzones(delete_time);

      CREATE TABLE files (
        id TEXT PRIMARY KEY,
        dropzone_id TEXT NOT NULL REFERENCES dropzones(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        type TEXT NOT NULL DEFAULT '',
        size INTEGER NOT NULL CHECK (size >= 0),
        blob_key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('pending', 'uploaded')),
        etag TEXT,
        uploader_key_id INTEGER REFERENCES api_keys(id) ON DELETE SET NULL,
        created_at INTEGER NOT NULL,
        confirmed_at INTEGER,
        pending_expires_at INTEGER
      );
      CREATE INDEX files_dropzone ON files(dropzone_id, created_at);
      CREATE INDEX files_pending ON files(status, pending_expires_at);

      CREATE TABLE permissions (
        resource_type TEXT NOT NULL CHECK (resource_type IN ('dropzone', 'file')),
        resource_id TEXT NOT NULL,
        principal TEXT NOT NULL,
        permission TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (resource_type, resource_id, principal, permission)
      );

      -- blobs whose rows are gone; deleted from the store by the sweeper (survives crashes)
      CREATE TABLE blob_deletions (
        blob_key TEXT PRIMARY KEY,
        queued_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'dropzone share ids',
    // A public handle for grantees: it names the dropzone in /dropzones/:id paths but is no x-dropzone-id credential.
    sql: `
      ALTER TABLE dropzones ADD COLUMN share_id TEXT;
      UPDATE dropzones SET share_id = 'dzs_' || lower(hex(randomblob(16))) WHERE share_id IS NULL;
      CREATE UNIQUE INDEX dropzones_share_id ON dropzones(share_id);
    `,
  },
  {
    version: 3,
    name: 'pending upload holder',
    sql: `
      -- who holds a pending upload made through the dropzone page (a hash of the client address), so one visitor
      -- can hold only a few at once; NULL for uploads through the API and once confirmed
      ALTER TABLE files ADD COLUMN pending_holder TEXT;
      CREATE INDEX files_pending_holder ON files(dropzone_id, pending_holder) WHERE pending_holder IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'deferred blob deletions',
    sql: `
      -- a key whose upload URL may still be used (S3) is deleted at once and again once the URL is dead:
      -- the row stays until not_before; tries counts deletions done so far
      ALTER TABLE blob_deletions ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE blob_deletions ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX blob_deletions_order ON blob_deletions(queued_at, blob_key);
    `,
  },
  {
    // Issue 8: each dropzone counts its files (pending and uploaded), so a file-count limit can be enforced in the
    // same UPDATE that reserves space; and each file now costs a small overhead in used_space (core/quota.ts
    // fileCost: 1000 bytes + UTF-8 bytes of name and type). Existing files are charged the same way here, so
    // releasing them later gives back exactly what they hold. Lists and ZIPs walk a dropzone's files in batches in
    // (created_at, id) order: an index on exactly that order keeps each batch a short range scan, also when many
    // files share a created_at (the old index on (dropzone_id, created_at) is a prefix of it and goes).
    version: 5,
    name: 'file count and per-file overhead',
    sql: `
      ALTER TABLE dropzones ADD COLUMN file_count INTEGER NOT NULL DEFAULT 0 CHECK (file_count >= 0);
      UPDATE dropzones SET
        file_count = (SELECT COUNT(*) FROM files WHERE files.dropzone_id = dropzones.id),
        used_space = used_space + (
          SELECT COALESCE(SUM(1000 + length(CAST(name AS BLOB)) + length(CAST(type AS BLOB))), 0)
          FROM files WHERE files.dropzone_id = dropzones.id);
      DROP INDEX files_dropzone;
      CREATE INDEX files_dropzone_order ON files(dropzone_id, created_at, id);
    `,
  },
  {
    // Issue 9: invariants the database keeps by itself, so they hold with several writers (processes, nodes), not only
    // because one process serialises its transactions.
    // - A live dropzone's name is unique per owner: `live_name` holds the name while the dropzone may still be found
    //   by it; a create first clears the claims of the owner's expired dropzones of that name, then inserts, and the
    //   unique index refuses a second live holder. Existing duplicates (from racing creates) keep the name on the
    //   newest one, which is the one create-by-name already chose.
    // - One active admin key: earlier extra active admins (only possible from racing bootstraps) stop being admin;
    //   the oldest, the one used so far, stays.
    // (The signing secret is created once by an insert that keeps an existing value; settings.key is its key.)
    version: 6,
    name: 'database-enforced invariants',
    sql: `
      ALTER TABLE dropzones ADD COLUMN live_name TEXT;
      UPDATE dropzones SET live_name = name
      WHERE name IS NOT NULL AND owner_key_id IS NOT NULL AND id = (
        SELECT d.id FROM dropzones d WHERE d.owner_key_id = dropzones.owner_key_id AND d.name = dropzones.name
        ORDER BY d.created_at DESC, d.id DESC LIMIT 1);
      CREATE UNIQUE INDEX dropzones_live_name ON dropzones(owner_key_id, live_name) WHERE live_name IS NOT NULL;

      UPDATE api_keys SET is_admin = 0
      WHERE is_admin = 1 AND revoked_at IS NULL
        AND id <> (SELECT MIN(id) FROM api_keys WHERE is_admin = 1 AND revoked_at IS NULL);
      CREATE UNIQUE INDEX api_keys_one_admin ON api_keys(is_admin) WHERE is_admin = 1 AND revoked_at IS NULL;
    `,
  },
  {
    // Issue 9: work that one node at a time should do (the sweeper) is done by the holder of a lease, a row taken
    // or renewed with one conditional upsert; a holder that dies loses it when it expires.
    version: 7,
    name: 'leases',
    sql: `
      CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      );
    `,
  },
  {
    // Issue 11: a pending file may be uploaded in parts (S3-style multipart). The upload id the server opened for it is
    // pinned here: parts are signed and completion accepted only for this id, so a second start (or a replayed
    // request) cannot open parallel uploads to the same key, and deleting or expiring the file knows what to abort.
    version: 8,
    name: 'multipart upload id',
    sql: `
      ALTER TABLE files ADD COLUMN multipart_upload_id TEXT;
    `,
  },
  {
    // Issue 13: the events outbox and signed webhooks. An event is written in the same transaction as the change it
    // describes; the dispatcher (one node at a time, under a lease) turns each into one delivery per matching
    // subscription, with the exact body every attempt sends, and logs every attempt. All state is here, so deliveries
    // survive restarts. `audience` lists the publicIds granted on the resource when it happened (JSON), so events of
    // deleted dropzones still go only to keys that could see them.
    version: 9,
    name: 'events and webhooks',
    sql: `
      CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        dropzone_id TEXT NOT NULL,
        share_id TEXT NOT NULL,
        file_id TEXT,
        actor TEXT,
        owner TEXT,
        audience TEXT NOT NULL DEFAULT '[]',
        data TEXT NOT NULL DEFAULT '{}',
        dispatched_at INTEGER
      );
      CREATE INDEX events_undispatched ON events(seq) WHERE dispatched_at IS NULL;
      CREATE INDEX events_dispatched ON events(dispatched_at) WHERE dispatched_at IS NOT NULL;

      CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        key_id INTEGER NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        events TEXT NOT NULL DEFAULT '[]',
        secret TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX webhooks_key ON webhooks(key_id, created_at);

      CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event_id TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
      CREATE INDEX webhook_deliveries_done ON webhook_deliveries(updated_at) WHERE status <> 'pending';
      CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id);

      CREATE TABLE webhook_attempts (
        id INTEGER PRIMARY KEY,
        delivery_id TEXT NOT NULL,
        webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        status_code INTEGER,
        error TEXT,
        latency_ms INTEGER NOT NULL
      );
      CREATE INDEX webhook_attempts_webhook ON webhook_attempts(webhook_id, id);
      CREATE INDEX webhook_attempts_at ON webhook_attempts(at);
    `,
  },
  {
    // Issue 13: the virus-scan state of a confirmed file (NULL: confirmed with scanning off) and the claim a node holds
    // on its scan (so one node scans a file; a node that dies loses the claim when it expires). The partial index
    // finds the files left `scanning` (at start, by the periodic resume) without walking the table.
    version: 10,
    name: 'scan state',
    sql: `
      ALTER TABLE files ADD COLUMN scan_state TEXT CHECK (scan_state IN ('scanning', 'clean', 'quarantined', 'scan_failed'));
      ALTER TABLE files ADD COLUMN scan_claim_until INTEGER;
      CREATE INDEX files_scanning ON files(confirmed_at, id) WHERE scan_state = 'scanning';
    `,
  },
  {
    // Issue 10: every list is paged by keyset in (created_at, id) order (dropzones) or (principal, permission) order
    // (grants: the primary key already is that order). The dropzone lists get indexes on exactly their order, so a page
    // is a short range scan: every dropzone (admin `all=true`), a key's own ones, and the grants naming a key (covering, the
    // other half of what a key sees; SQLite had no index by principal yet, PostgreSQL has had one since its first
    // migration). Numbered 11: 9 and 10 are taken by work on other branches.
    version: 11,
    name: 'list paging indexes',
    sql: `
      CREATE INDEX dropzones_order ON dropzones(created_at, id);
      CREATE INDEX dropzones_owner_order ON dropzones(owner_key_id, created_at, id);
      CREATE INDEX permissions_principal ON permissions(principal, resource_type, permission, resource_id);
    `,
  },
];
