import GRDB

/// Named migrations. A migration is never edited once shipped: add a new one.
enum CatalogMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("2026-11-25-pools-volumes") { db in
            try db.create(table: "pool") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("path", .text).notNull().unique()
                t.column("capacityBytes", .integer)
                t.column("maxOvercommit", .double).notNull()
                t.column("warnPercent", .double).notNull()
                t.column("criticalPercent", .double).notNull()
                t.column("reservedPercent", .double).notNull()
                t.column("createdAt", .text).notNull()
            }
            try db.create(table: "volume") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("poolId", .integer).notNull().indexed().references("pool", onDelete: .restrict)
                t.column("name", .text).notNull()
                t.column("uuid", .text).notNull().unique()
                t.column("fileName", .text).notNull()
                t.column("sizeBytes", .integer).notNull()
                t.column("provisioning", .text).notNull()
                t.column("blockSize", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("pendingSizeBytes", .integer)
                t.column("pendingName", .text)
                t.column("createdAt", .text).notNull()
                t.uniqueKey(["poolId", "name"])
                t.uniqueKey(["poolId", "fileName"])
            }
            try db.create(table: "setting") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        migrator.registerMigration("2026-11-25-exports") { db in
            try db.create(table: "export") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("poolId", .integer).notNull().unique().references("pool", onDelete: .cascade)
                t.column("fsid", .integer).notNull().unique()
                t.column("rules", .text).notNull()
                t.column("createdAt", .text).notNull()
            }
        }
        migrator.registerMigration("2026-11-25-iscsi-targets") { db in
            try db.create(table: "target") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("iqn", .text).notNull().unique()
                t.column("alias", .text)
                t.column("allowAny", .boolean).notNull()
                t.column("createdAt", .text).notNull()
            }
            try db.create(table: "target_lun") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("targetId", .integer).notNull().references("target", onDelete: .cascade)
                t.column("lun", .integer).notNull()
                t.column("volumeId", .integer).notNull().indexed().references("volume", onDelete: .restrict)
                t.column("readOnly", .boolean).notNull()
                t.uniqueKey(["targetId", "lun"])
            }
            try db.create(table: "target_acl") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("targetId", .integer).notNull().references("target", onDelete: .cascade)
                t.column("initiator", .text).notNull()
                t.uniqueKey(["targetId", "initiator"])
            }
        }
        migrator.registerMigration("2026-11-25-target-chap") { db in
            try db.alter(table: "target") { t in
                t.add(column: "chapUser", .text)
                t.add(column: "chapSecret", .text)
                t.add(column: "mutualUser", .text)
                t.add(column: "mutualSecret", .text)
            }
        }
        migrator.registerMigration("2026-11-25-persistent-reservations") { db in
            // APTPL state of a volume's persistent reservations (SPC-4 §5.12.4), as JSON.
            try db.create(table: "persistent_reservation") { t in
                t.primaryKey("volumeId", .integer).references("volume", onDelete: .cascade)
                t.column("state", .text).notNull()
                t.column("updatedAt", .text).notNull()
            }
        }
        migrator.registerMigration("2026-11-26-portal-groups") { db in
            // ALUA access state per target and portal group (SPC-4 §5.16); no row: active/optimized.
            try db.create(table: "target_portal_group") { t in
                t.column("targetId", .integer).notNull().references("target", onDelete: .cascade)
                t.column("groupId", .integer).notNull()
                t.column("state", .text).notNull()
                t.primaryKey(["targetId", "groupId"])
            }
        }
        migrator.registerMigration("2026-12-01-pool-created-directory") { db in
            // Whether Depot made the pool's directory; pools from before are taken as made by it,
            // as their deletion always assumed.
            try db.alter(table: "pool") { t in
                t.add(column: "createdDirectory", .boolean).notNull().defaults(to: true)
            }
        }
        migrator.registerMigration("2026-12-02-volume-format") { db in
            // raw or qcow2; every volume before this was raw.
            try db.alter(table: "volume") { t in
                t.add(column: "format", .text).notNull().defaults(to: "raw")
            }
        }
        migrator.registerMigration("2026-12-03-snapshots-jobs") { db in
            // Frozen layers of volume chains: a snapshot is the file the volume's
            // active layer was when it was taken; `parentId` the layer below it.
            try db.create(table: "snapshot") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("uuid", .text).notNull().unique()
                t.column("volumeId", .integer).notNull().indexed().references("volume", onDelete: .restrict)
                t.column("poolId", .integer).notNull().references("pool", onDelete: .restrict)
                t.column("name", .text).notNull()
                t.column("fileName", .text).notNull()
                t.column("format", .text).notNull()
                t.column("parentId", .integer).indexed().references("snapshot", onDelete: .restrict)
                t.column("sizeBytes", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("createdAt", .text).notNull()
                t.uniqueKey(["volumeId", "name"])
                t.uniqueKey(["poolId", "fileName"])
            }
            // The snapshot a volume's active layer is an overlay on (none: it stands alone).
            try db.alter(table: "volume") { t in
                t.add(column: "baseSnapshotId", .integer).references("snapshot", onDelete: .restrict)
            }
            // Long work (copies, flatten, merge): state that survives a restart.
            try db.create(table: "job") { t in
                t.primaryKey("id", .text)
                t.column("kind", .text).notNull()
                t.column("object", .text).notNull()
                t.column("state", .text).notNull()
                t.column("bytesDone", .integer).notNull()
                t.column("bytesTotal", .integer).notNull()
                t.column("rateBytes", .integer).notNull()
                t.column("parameters", .text).notNull()
                t.column("error", .text)
                t.column("createdAt", .text).notNull()
                t.column("updatedAt", .text).notNull()
                t.column("finishedAt", .text)
            }
        }
        migrator.registerMigration("2026-12-04-api-tokens") { db in
            // Named API tokens with roles: a salted SHA-256 of the secret, never the secret.
            try db.create(table: "api_token") { t in
                t.primaryKey("name", .text)
                t.column("role", .text).notNull()
                t.column("salt", .blob).notNull()
                t.column("hash", .blob).notNull()
                t.column("createdAt", .text).notNull()
                t.column("expiresAt", .text)
                t.column("lastUsedAt", .text)
            }
        }
        migrator.registerMigration("2026-12-05-portal-network-scope") { db in
            // The portals (HOST:PORT, comma-separated) a target is served on; NULL: all of them.
            try db.alter(table: "target") { t in t.add(column: "portals", .text) }
            // The networks (CIDR, comma-separated) an ACL entry admits its initiator from; NULL: any.
            try db.alter(table: "target_acl") { t in t.add(column: "networks", .text) }
        }
        migrator.registerMigration("2026-12-06-volume-flush-error") { db in
            // The flush failure a volume is latched on (NULL: none), kept until an operator clears it.
            try db.alter(table: "volume") { t in t.add(column: "flushError", .text) }
        }
        return migrator
    }
}
