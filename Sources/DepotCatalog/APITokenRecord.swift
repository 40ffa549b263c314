import DepotCore
import Foundation
import GRDB

/// One row of table `api_token`: a named token's role and lifetime, and a
/// salted SHA-256 of its secret (the secret itself is never stored).
public struct APITokenRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "api_token"

    public var name: String
    public var role: String
    public var salt: Data
    public var hash: Data
    public var createdAt: String
    public var expiresAt: String?
    public var lastUsedAt: String?

    public init(
        name: String, role: String, salt: Data, hash: Data, createdAt: String, expiresAt: String?,
        lastUsedAt: String? = nil
    ) {
        self.name = name
        self.role = role
        self.salt = salt
        self.hash = hash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
    }
}

extension Catalog {
    public func apiTokens() async throws(DepotError) -> [APITokenRecord] {
        try await reading { db in try APITokenRecord.order(Column("name")).fetchAll(db) }
    }

    /// Adds a token; a name in use is a conflict.
    public func insertAPIToken(_ record: APITokenRecord) async throws(DepotError) {
        let name = record.name
        let inserted = try await writing { db -> Bool in
            guard try APITokenRecord.fetchOne(db, key: name) == nil else { return false }
            try record.insert(db)
            return true
        }
        guard inserted else { throw .conflict("token '\(name)' already exists") }
    }

    /// Replaces a token of that name (or adds it): the bootstrap admin's.
    public func replaceAPIToken(_ record: APITokenRecord) async throws(DepotError) {
        try await writing { db in try record.save(db) }
    }

    /// Removes a token; false when there was none of that name.
    public func deleteAPIToken(name: String) async throws(DepotError) -> Bool {
        try await writing { db in try APITokenRecord.deleteOne(db, key: name) }
    }

    public func touchAPIToken(name: String, at time: String) async throws(DepotError) {
        try await writing { db in
            try db.execute(sql: "UPDATE api_token SET lastUsedAt = ? WHERE name = ?", arguments: [time, name])
        }
    }
}
