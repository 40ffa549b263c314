/// What an API token may do. Each role includes the ones below it:
/// `readonly` reads (GET, `/metrics`); `operator` also changes volumes,
/// snapshots, clones, LUN maps, exports and jobs; `admin` everything
/// (pools, targets, CHAP, ACLs, portal groups, tokens, the audit log).
public enum TokenRole: String, Codable, Sendable, CaseIterable, Comparable {
    case readonly, `operator`, admin

    private var rank: Int {
        switch self {
        case .readonly: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (a: TokenRole, b: TokenRole) -> Bool { a.rank < b.rank }

    /// Whether a token of this role may make a call that needs `needed`.
    public func allows(_ needed: TokenRole) -> Bool { self >= needed }
}

/// POST /v1/tokens.
public struct CreateTokenRequest: Codable, Sendable {
    public var name: String
    public var role: TokenRole
    /// Seconds from now until the token stops working (nil: never).
    public var expiresInSeconds: Int?

    public init(name: String, role: TokenRole, expiresInSeconds: Int? = nil) {
        self.name = name
        self.role = role
        self.expiresInSeconds = expiresInSeconds
    }

    /// The longest lifetime a token may be given (ten years).
    public static let longestLifetime = 10 * 366 * 86_400

    public func validate() throws(DepotError) {
        try ObjectName.validate(name, kind: "token")
        if let seconds = expiresInSeconds, !(1...Self.longestLifetime).contains(seconds) {
            throw .invalidArgument("a token expires 1 second to 10 years from now, not in \(seconds) seconds")
        }
    }
}

/// A token as listed: never its secret.
public struct TokenInfo: Codable, Sendable, Equatable {
    public var name: String
    public var role: TokenRole
    public var createdAt: String
    public var expiresAt: String?
    public var lastUsedAt: String?
    /// `active` or `expired`.
    public var state: String

    public init(
        name: String, role: TokenRole, createdAt: String, expiresAt: String?, lastUsedAt: String?, state: String
    ) {
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.state = state
    }
}

/// The answer to a create: the secret, shown this once.
public struct CreatedToken: Codable, Sendable {
    public var token: TokenInfo
    public var secret: String

    public init(token: TokenInfo, secret: String) {
        self.token = token
        self.secret = secret
    }
}

public struct TokenList: Codable, Sendable {
    public var tokens: [TokenInfo]
    public init(tokens: [TokenInfo]) { self.tokens = tokens }
}
