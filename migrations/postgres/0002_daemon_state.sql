-- What configuration each running daemon has loaded, for `marsad status`: the version (a hash of
-- marsad.toml, the sources file and the watchlist files), when it was loaded, and the last reload
-- that failed (the daemon then keeps the previous version). One row per daemon instance.
CREATE TABLE daemon_state (
    instance             TEXT PRIMARY KEY,
    config_version       TEXT NOT NULL,
    loaded_at            TIMESTAMPTZ NOT NULL,
    last_reload_error    TEXT,
    last_reload_error_at TIMESTAMPTZ,
    updated              TIMESTAMPTZ NOT NULL
);
