/// The release of Depot these binaries are (`depot --version`,
/// `depotd --version`, `GET /v1/status`).
public enum DepotVersion {
    public static let current = "0.6.0"
}

/// What `GET /v1/status` and `depot status` show: the daemon at a glance.
public struct DaemonStatus: Codable, Sendable, Equatable {
    public struct PoolState: Codable, Sendable, Equatable {
        public var name: String
        public var state: CapacityState
        public var usedPercent: Double
        public init(name: String, state: CapacityState, usedPercent: Double) {
            self.name = name
            self.state = state
            self.usedPercent = usedPercent
        }
    }

    public var version: String
    public var startedAt: String
    public var uptimeSeconds: Int
    public var dataDirectory: String
    /// The API URL and the iSCSI portals as bound (ports chosen when 0 was asked).
    public var api: String
    public var portals: [String]
    public var pools: [PoolState]
    public var sessions: Int
    /// Things the start-up reconcile found and reported (missing files, unknown files, repairs).
    public var reconcileFindings: Int

    public init(
        version: String, startedAt: String, uptimeSeconds: Int, dataDirectory: String, api: String, portals: [String],
        pools: [PoolState],
        sessions: Int, reconcileFindings: Int
    ) {
        self.version = version
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
        self.dataDirectory = dataDirectory
        self.api = api
        self.portals = portals
        self.pools = pools
        self.sessions = sessions
        self.reconcileFindings = reconcileFindings
    }
}
