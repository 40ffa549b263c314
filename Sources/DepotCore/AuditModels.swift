/// One line of the audit log (`DATA/audit.log`, `GET /v1/audit`).
public struct AuditEntry: Codable, Sendable, Equatable {
    public var time: String
    public var client: String
    /// `POST /v1/pools`, `GET /v1/tokens` (a refused authentication), `iscsi.login`.
    public var action: String
    public var object: String
    /// `ok`, or the error code and message (`unauthorized: invalid bearer token`).
    public var outcome: String
    /// The HTTP status answered (0 for an iSCSI login).
    public var status: Int
    /// The name of the token the call authenticated with (nil: it did not).
    public var token: String?

    public init(
        time: String, client: String, action: String, object: String, outcome: String, status: Int,
        token: String? = nil
    ) {
        self.time = time
        self.client = client
        self.action = action
        self.object = object
        self.outcome = outcome
        self.status = status
        self.token = token
    }

    public var succeeded: Bool { outcome == "ok" }
}

public struct AuditList: Codable, Sendable {
    public var entries: [AuditEntry]
    public init(entries: [AuditEntry]) { self.entries = entries }
}
