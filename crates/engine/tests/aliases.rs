//! Collection aliases: resolution, Qdrant's rules, all-or-nothing updates, durability.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use quiver_engine::*;
use std::path::Path;

fn open(dir: &Path) -> Database {
    Database::open(dir, DatabaseOptions::default()).unwrap()
}

fn create(db: &Database, name: &str) -> std::sync::Arc<Collection> {
    db.create_collection(name, Schema::dense(2, Distance::Dot), Default::default())
        .unwrap()
}

fn create_alias(alias: &str, collection: &str) -> AliasAction {
    AliasAction::Create {
        alias: alias.into(),
        collection: collection.into(),
    }
}

/// Whether an error is the one expected.
type ErrorCheck = fn(&Error) -> bool;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, c)| (a.to_string(), c.to_string()))
        .collect()
}

#[test]
fn aliases_resolve_to_their_collection_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        create(&db, "a");
        create(&db, "b");
        db.update_aliases(&[create_alias("x", "a"), create_alias("y", "a")])
            .unwrap();
        let via_alias = db.collection("x").unwrap();
        assert_eq!(via_alias.name(), "a");
        via_alias
            .upsert(vec![Point::new(1, vec![1.0, 0.0])])
            .unwrap();
        assert_eq!(db.collection("a").unwrap().count(), 1);

        // Create on an existing alias re-points it; rename moves it; delete removes it.
        db.update_aliases(&[
            create_alias("x", "b"),
            AliasAction::Rename {
                old: "y".into(),
                new: "z".into(),
            },
            create_alias("w", "b"),
            AliasAction::Delete { alias: "w".into() },
        ])
        .unwrap();
        assert_eq!(db.list_aliases(), pairs(&[("x", "b"), ("z", "a")]));
        assert_eq!(db.collection("x").unwrap().name(), "b");
        assert!(matches!(
            db.collection("y"),
            Err(Error::CollectionNotFound { .. })
        ));
    }
    let db = open(dir.path());
    assert_eq!(db.list_aliases(), pairs(&[("x", "b"), ("z", "a")]));
    assert_eq!(db.collection("z").unwrap().count(), 1);
}

#[test]
fn alias_updates_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        create(&db, "a");
        db.update_aliases(&[create_alias("x", "a")]).unwrap();
        let before = db.list_aliases();
        let failing: [(Vec<AliasAction>, ErrorCheck); 6] = [
            (
                vec![
                    create_alias("y", "a"),
                    AliasAction::Rename {
                        old: "nope".into(),
                        new: "z".into(),
                    },
                ],
                |e| matches!(e, Error::AliasNotFound { alias } if alias == "nope"),
            ),
            (
                vec![
                    AliasAction::Delete { alias: "x".into() },
                    create_alias("y", "missing"),
                ],
                |e| matches!(e, Error::CollectionNotFound { name } if name == "missing"),
            ),
            // An alias names a collection, not another alias.
            (vec![create_alias("y", "x")], |e| {
                matches!(e, Error::CollectionNotFound { .. })
            }),
            // Alias and collection names never overlap.
            (
                vec![create_alias("a", "a")],
                |e| matches!(e, Error::CollectionExists { name } if name == "a"),
            ),
            (
                vec![AliasAction::Rename {
                    old: "x".into(),
                    new: "a".into(),
                }],
                |e| matches!(e, Error::CollectionExists { .. }),
            ),
            (vec![create_alias("bad name", "a")], |e| {
                matches!(e, Error::InvalidName { .. })
            }),
        ];
        for (actions, expected) in failing {
            let e = db.update_aliases(&actions).unwrap_err();
            assert!(expected(&e), "{actions:?}: unexpected error {e}");
            assert_eq!(db.list_aliases(), before, "{actions:?} changed the aliases");
        }
        // As in Qdrant, deleting an alias that does not exist is no error.
        db.update_aliases(&[AliasAction::Delete {
            alias: "never".into(),
        }])
        .unwrap();
        let e = db
            .create_collection("x", Schema::dense(2, Distance::Dot), Default::default())
            .unwrap_err();
        assert!(
            matches!(&e, Error::AliasExists { alias, collection } if alias == "x" && collection == "a"),
            "{e}"
        );
    }
    assert_eq!(open(dir.path()).list_aliases(), pairs(&[("x", "a")]));
}

#[test]
fn dropping_a_collection_removes_its_aliases() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        create(&db, "a");
        create(&db, "b");
        db.update_aliases(&[
            create_alias("x", "a"),
            create_alias("y", "b"),
            create_alias("z", "a"),
        ])
        .unwrap();
        // Dropping goes by collection name only.
        assert!(matches!(
            db.drop_collection("x"),
            Err(Error::CollectionNotFound { .. })
        ));
        db.drop_collection("a").unwrap();
        assert_eq!(db.list_aliases(), pairs(&[("y", "b")]));
        // A new collection of the dropped name does not inherit its aliases.
        create(&db, "a");
        assert!(db.collection("x").is_err());
    }
    assert_eq!(open(dir.path()).list_aliases(), pairs(&[("y", "b")]));
}

/// A crash after a dropped collection's directory is gone but before its aliases are: the
/// next open removes the aliases that name no collection.
#[test]
fn aliases_of_a_collection_gone_in_a_crash_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        create(&db, "a");
        create(&db, "b");
        db.update_aliases(&[create_alias("x", "a"), create_alias("y", "b")])
            .unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("collections/a")).unwrap();
    let db = open(dir.path());
    assert_eq!(db.list_aliases(), pairs(&[("y", "b")]));
    drop(db);
    assert_eq!(open(dir.path()).list_aliases(), pairs(&[("y", "b")]));
}

#[test]
fn a_damaged_aliases_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        create(&db, "a");
        db.update_aliases(&[create_alias("x", "a")]).unwrap();
    }
    let path = dir.path().join("aliases");
    let good = std::fs::read(&path).unwrap();
    // A flipped byte in the header, in the body, and a cut file.
    let mut damaged = Vec::new();
    for at in [10, good.len() - 8] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x20;
        damaged.push(bytes);
    }
    damaged.push(good[..good.len() - 3].to_vec());
    // Checksums right, contents not understood.
    for body in [
        &b"{\"aliases\": {\"x\": 3}}"[..],
        b"{\"aliases\": {}, \"more\": 1}",
    ] {
        damaged.push(quiver_storage::frame::encode(ALIASES_KIND, [0; 4], body));
    }
    for bytes in damaged {
        std::fs::write(&path, &bytes).unwrap();
        let e = Database::open(dir.path(), DatabaseOptions::default()).unwrap_err();
        assert!(
            e.to_string().contains(&path.display().to_string()),
            "the error does not name the file: {e}"
        );
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(open(dir.path()).list_aliases(), pairs(&[("x", "a")]));
}
