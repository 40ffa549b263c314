/// NFS export objects of the REST API (`/v1/exports`), shared by server and CLI.

/// exports(5) `rw` / `ro`; Ganesha `Access_Type = RW | RO`.
public enum ExportAccess: String, Codable, Sendable, CaseIterable {
    case rw, ro
}

/// Which client identities are mapped to the anonymous user.
/// exports(5): `no_root_squash` / `root_squash` / `all_squash`;
/// Ganesha: `No_Root_Squash` / `Root_Squash` / `All_Squash`.
public enum ExportSquash: String, Codable, Sendable, CaseIterable {
    case none, root, all
}

/// One client rule of an export. Security is `sec=sys` and writes are `sync`:
/// a datastore never acknowledges a write the server has not stored.
public struct ExportRule: Codable, Sendable, Equatable {
    /// A host name, an IPv4/IPv6 address, a CIDR network, or `*`.
    public var client: String
    public var access: ExportAccess
    public var squash: ExportSquash
    public var anonuid: Int?
    public var anongid: Int?

    public init(
        client: String, access: ExportAccess = .rw, squash: ExportSquash = .root, anonuid: Int? = nil,
        anongid: Int? = nil
    ) {
        self.client = client
        self.access = access
        self.squash = squash
        self.anonuid = anonuid
        self.anongid = anongid
    }
}

public struct ExportInfo: Codable, Sendable, Equatable {
    public var pool: String
    public var path: String
    /// Stable for the life of the pool: exports(5) `fsid=`, Ganesha `Export_Id`
    /// and `Filesystem_Id`.
    public var fsid: Int
    /// NFSv4 pseudo path, `/depot/POOL`.
    public var pseudo: String
    public var rules: [ExportRule]
    public var createdAt: String
    /// Guardrail notices given when the export was made (not stored).
    public var warnings: [String]?

    public init(
        pool: String, path: String, fsid: Int, pseudo: String, rules: [ExportRule], createdAt: String,
        warnings: [String]? = nil
    ) {
        self.pool = pool
        self.path = path
        self.fsid = fsid
        self.pseudo = pseudo
        self.rules = rules
        self.createdAt = createdAt
        self.warnings = warnings
    }
}

public struct ExportList: Codable, Sendable {
    public var exports: [ExportInfo]
    public init(exports: [ExportInfo]) { self.exports = exports }
}

public struct CreateExportRequest: Codable, Sendable {
    public var pool: String
    public var rules: [ExportRule]
    /// Allows `squash: none` for `*` (no_root_squash to the world).
    public var force: Bool?

    public init(pool: String, rules: [ExportRule], force: Bool? = nil) {
        self.pool = pool
        self.rules = rules
        self.force = force
    }
}

/// PUT /v1/exports/{pool}: the path names the pool; the body may repeat it
/// (what `depot export update` sends) but not name another.
public struct UpdateExportRequest: Codable, Sendable {
    public var pool: String?
    public var rules: [ExportRule]
    public var force: Bool?

    public init(pool: String? = nil, rules: [ExportRule], force: Bool? = nil) {
        self.pool = pool
        self.rules = rules
        self.force = force
    }
}

/// What one publish wrote and how the NFS servers were told.
public struct PublishReport: Codable, Sendable, Equatable {
    public var files: [String] = []
    public var removedFiles: [String] = []
    /// e.g. `exportfs -ra: ok`, `ganesha: SIGHUP sent to pid 123`.
    public var reloads: [String] = []
    public var warnings: [String] = []

    public init() {}
}
