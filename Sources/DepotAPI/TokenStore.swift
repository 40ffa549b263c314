import Crypto
import DepotCatalog
import DepotCore
import Foundation
import Synchronization

/// The API's named tokens: each a role, an optional expiry, and a salted
/// SHA-256 of its secret (swift-crypto). The catalog holds only the salts
/// and hashes; the secret is shown once, when the token is made (the
/// bootstrap admin's is also in `DATA/api-token`, mode 0600). Verification
/// hashes the presented secret with every token's salt and compares in
/// constant time, without stopping at a match, so timing tells nothing of
/// which token (if any) matched or how much of a hash agreed.
public final class TokenStore: Sendable {
    /// Who a request authenticated as.
    public struct Identity: Sendable, Equatable {
        public let name: String
        public let role: TokenRole

        public init(name: String, role: TokenRole) {
            self.name = name
            self.role = role
        }
    }

    public enum Verdict: Sendable, Equatable {
        case valid(Identity)
        case expired(String)
        case unknown
    }

    struct Entry: Sendable {
        var record: APITokenRecord
        var role: TokenRole
        var expires: Date?
        /// When its last use was written to the catalog (at most once a minute).
        var savedUse: Date?
    }

    private let catalog: Catalog
    private let entries: Mutex<[String: Entry]>
    /// How often a token's `lastUsedAt` reaches the catalog (uses in between are kept in memory).
    static let useWriteInterval: TimeInterval = 60

    private init(catalog: Catalog, entries: [String: Entry]) {
        self.catalog = catalog
        self.entries = Mutex(entries)
    }

    /// The tokens the catalog holds.
    public static func open(catalog: Catalog) async throws(DepotError) -> TokenStore {
        var entries: [String: Entry] = [:]
        for record in try await catalog.apiTokens() {
            // A row with a role this daemon does not know grants nothing.
            guard let role = TokenRole(rawValue: record.role) else { continue }
            entries[record.name] = Entry(
                record: record, role: role, expires: record.expiresAt.flatMap(Timestamp.date), savedUse: nil)
        }
        return TokenStore(catalog: catalog, entries: entries)
    }

    // MARK: Verifying

    public func verify(_ secret: String, now: Date = Date()) -> Verdict {
        let presented = Array(secret.utf8)
        let all = entries.withLock { Array($0.values) }
        var match: Entry?
        for entry in all {
            let digest = Self.hash(presented, salt: entry.record.salt)
            // Every entry hashed and compared: no early exit.
            if Self.constantTimeEqual(digest, entry.record.hash), match == nil { match = entry }
        }
        guard let match else { return .unknown }
        if let expires = match.expires, expires <= now { return .expired(match.record.name) }
        noteUse(match.record.name, now: now)
        return .valid(Identity(name: match.record.name, role: match.role))
    }

    /// In memory at once; in the catalog at most once a minute per token.
    private func noteUse(_ name: String, now: Date) {
        let time = Timestamp.string(now)
        let save = entries.withLock { entries -> Bool in
            guard var entry = entries[name] else { return false }
            entry.record.lastUsedAt = time
            let due = entry.savedUse.map { now.timeIntervalSince($0) >= Self.useWriteInterval } ?? true
            if due { entry.savedUse = now }
            entries[name] = entry
            return due
        }
        guard save else { return }
        let catalog = self.catalog
        Task { try? await catalog.touchAPIToken(name: name, at: time) }
    }

    // MARK: Managing

    public func list(now: Date = Date()) -> [TokenInfo] {
        entries.withLock { $0.values.map { Self.info($0, now: now) } }.sorted { $0.name < $1.name }
    }

    /// Makes a token; its secret is in the answer and nowhere else.
    public func create(_ request: CreateTokenRequest, now: Date = Date()) async throws(DepotError) -> CreatedToken {
        try request.validate()
        let secret = Self.newSecret()
        let expires = request.expiresInSeconds.map { now.addingTimeInterval(TimeInterval($0)) }
        let info = try await install(name: request.name, role: request.role, secret: secret, expires: expires, now: now)
        return CreatedToken(token: info, secret: secret)
    }

    /// Adds (or with `replacing`, replaces) a token with a given secret: the bootstrap admin's.
    @discardableResult
    public func install(
        name: String, role: TokenRole, secret: String, expires: Date? = nil, replacing: Bool = false,
        now: Date = Date()
    ) async throws(DepotError) -> TokenInfo {
        let salt = Self.randomBytes(16)
        let record = APITokenRecord(
            name: name, role: role.rawValue, salt: salt, hash: Self.hash(Array(secret.utf8), salt: salt),
            createdAt: Timestamp.string(now), expiresAt: expires.map(Timestamp.string))
        if replacing { try await catalog.replaceAPIToken(record) } else { try await catalog.insertAPIToken(record) }
        let entry = Entry(record: record, role: role, expires: expires, savedUse: nil)
        entries.withLock { $0[name] = entry }
        return Self.info(entry, now: now)
    }

    /// Revokes a token at once (its row goes). The last admin token that
    /// has not expired is kept: without it nobody could manage the daemon
    /// until a restart made a new bootstrap token.
    public func revoke(_ name: String, now: Date = Date()) async throws(DepotError) {
        // Checked and taken out in one step: two revokes at once cannot both pass the last-admin rule.
        let (found, lastAdmin) = entries.withLock { entries -> (Entry?, Bool) in
            guard let entry = entries[name] else { return (nil, false) }
            let admins = entries.values.filter { $0.role == .admin && !Self.isExpired($0, now: now) }
            let last = entry.role == .admin && !Self.isExpired(entry, now: now) && admins.count == 1
            if !last { entries[name] = nil }
            return (entry, last)
        }
        guard let found else { throw .notFound("token '\(name)' not found") }
        if lastAdmin {
            throw .conflict("token '\(name)' is the last admin token; create another admin token before revoking it")
        }
        do { _ = try await catalog.deleteAPIToken(name: name) } catch {
            // Not revoked after all: it works again, as the catalog still says.
            entries.withLock { $0[name] = found }
            throw error
        }
    }

    public func hasActiveAdmin(now: Date = Date()) -> Bool {
        entries.withLock { $0.values.contains { $0.role == .admin && !Self.isExpired($0, now: now) } }
    }

    // MARK: Pieces

    static func isExpired(_ entry: Entry, now: Date) -> Bool { entry.expires.map { $0 <= now } ?? false }

    static func info(_ entry: Entry, now: Date) -> TokenInfo {
        TokenInfo(
            name: entry.record.name, role: entry.role, createdAt: entry.record.createdAt,
            expiresAt: entry.record.expiresAt, lastUsedAt: entry.record.lastUsedAt,
            state: isExpired(entry, now: now) ? "expired" : "active")
    }

    static func hash(_ secret: [UInt8], salt: Data) -> Data {
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: secret)
        return Data(hasher.finalize())
    }

    /// Compares without an early exit, so timing does not leak how much of a hash agreed.
    static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[a.startIndex + i] : 0) ^ (i < b.count ? b[b.startIndex + i] : 0)
        }
        return diff == 0
    }

    /// 32 random bytes as 64 hex digits (the form of the bootstrap token).
    public static func newSecret() -> String {
        randomBytes(32).map { String(format: "%02x", $0) }.joined()
    }

    static func randomBytes(_ count: Int) -> Data {
        var rng = SystemRandomNumberGenerator()
        return Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }
}
