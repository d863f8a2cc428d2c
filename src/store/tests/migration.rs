use rusqlite::params;

use super::*;
use crate::store::schema::{self, V1_SQL, VERSION_LATEST};
use crate::store::StoreError;

/// A file exactly as the first mudshard left it, with a player and a room.
fn write_version_1_file(path: &PathBuf, secret: &[u8]) {
    let conn = Connection::open(path).expect("create");
    conn.execute_batch(V1_SQL).expect("v1 schema");
    conn.execute_batch("PRAGMA user_version = 1")
        .expect("version");
    conn.execute(
        "INSERT INTO accounts (name, name_key, password_hash, created_unix_s) VALUES (?1, ?2, ?3, ?4)",
        params!["Elder", "elder", "$argon2id$v=19$old", 1_600_000_000],
    )
    .expect("account");
    conn.execute(
        "INSERT INTO players (account_id, room, inventory) VALUES (last_insert_rowid(), ?1, ?2)",
        params!["town:temple", r#"["staff","scroll"]"#],
    )
    .expect("player");
    conn.execute(
        "INSERT INTO room_items (room, items) VALUES (?1, ?2)",
        params!["town:temple", r#"["altar"]"#],
    )
    .expect("room");
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('token_secret', ?1)",
        params![secret],
    )
    .expect("secret");
}

#[test]
fn a_file_from_the_first_version_is_upgraded_with_its_data_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 60_000);
    let secret = [42u8; 32];
    write_version_1_file(&cfg.path, &secret);

    let (store, snapshot) = open(&cfg);
    assert_eq!(
        snapshot.token_secret, secret,
        "tokens issued before the upgrade stay valid"
    );
    assert_eq!(
        snapshot.room_items.get("town:temple"),
        Some(&items(&["altar"]))
    );
    let handle = store.handle();
    let elder = wait(|r| handle.load_account("ELDER", r))
        .expect("load")
        .expect("exists");
    assert_eq!(elder.name, "Elder");
    assert_eq!(elder.password_hash, "$argon2id$v=19$old");
    assert_eq!(
        (elder.room.as_str(), elder.inventory),
        ("town:temple", items(&["staff", "scroll"]))
    );
    // The upgraded file takes the new schema's writes.
    handle.save_player("elder", "town:gate", &items(&["staff"]));
    wait(|r| handle.flush(r)).expect("flush");
    drop(handle);
    store.shutdown().expect("shutdown");

    let conn = Connection::open(&cfg.path).expect("open");
    assert_eq!(schema::version(&conn).expect("version"), VERSION_LATEST);
    let updated_ms: i64 = conn
        .query_row("SELECT updated_unix_ms FROM players", [], |row| row.get(0))
        .expect("v2 column");
    assert!(updated_ms > 0);
    let untouched_ms: i64 = conn
        .query_row("SELECT updated_unix_ms FROM room_items", [], |row| {
            row.get(0)
        })
        .expect("v2 column");
    assert_eq!(
        untouched_ms, 0,
        "rows the first version wrote get the default"
    );
}

#[test]
fn a_file_from_a_newer_mudshard_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 100);
    Connection::open(&cfg.path)
        .expect("create")
        .execute_batch("PRAGMA user_version = 7")
        .expect("version");
    let err = Store::open(cfg.clone()).err().expect("refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 7, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "store: data file {} has schema version 7 but this mudshard knows up to {VERSION_LATEST}; upgrade mudshard",
            cfg.path.display()
        )
    );
}

#[test]
fn a_new_file_gets_the_latest_schema_and_reopening_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path().join("nested/data").as_path(), 100);
    let (store, _) = open(&cfg);
    register(&store.handle(), "First").expect("registered");
    store.shutdown().expect("shutdown");
    let (store, _) = open(&cfg);
    store.shutdown().expect("shutdown");
    let conn = Connection::open(&cfg.path).expect("open");
    assert_eq!(schema::version(&conn).expect("version"), VERSION_LATEST);
    assert_eq!(accounts_in_file(&cfg.path), 1);
}
