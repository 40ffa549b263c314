/// iSCSI target objects of the REST API (`/v1/targets`).

public struct LUNInfo: Codable, Sendable, Equatable {
    public var lun: Int
    /// `POOL/NAME`
    public var volume: String
    public var readOnly: Bool
    public init(lun: Int, volume: String, readOnly: Bool) {
        self.lun = lun
        self.volume = volume
        self.readOnly = readOnly
    }
}

public struct TargetInfo: Codable, Sendable, Equatable {
    public var iqn: String
    public var alias: String?
    public var allowAnyInitiator: Bool
    public var initiators: [String]
    public var luns: [LUNInfo]
    public var createdAt: String
    /// The CHAP user when CHAP is required (secrets are never returned).
    public var chapUser: String?
    public var mutualChap: Bool
    /// The daemon portals (HOST:PORT) the target is served on; nil: all of them.
    public var portals: [String]?
    /// The networks (CIDR) an initiator is admitted from, for the initiators
    /// scoped by network; the others are admitted from any address.
    public var networks: [String: [String]]?
    public init(
        iqn: String, alias: String?, allowAnyInitiator: Bool, initiators: [String], luns: [LUNInfo], createdAt: String,
        chapUser: String? = nil, mutualChap: Bool = false, portals: [String]? = nil, networks: [String: [String]]? = nil
    ) {
        self.portals = portals
        self.networks = networks
        self.chapUser = chapUser
        self.mutualChap = mutualChap
        self.iqn = iqn
        self.alias = alias
        self.allowAnyInitiator = allowAnyInitiator
        self.initiators = initiators
        self.luns = luns
        self.createdAt = createdAt
    }
}

public struct TargetList: Codable, Sendable {
    public var targets: [TargetInfo]
    public init(targets: [TargetInfo]) { self.targets = targets }
}

public struct CreateTargetRequest: Codable, Sendable {
    public var iqn: String
    public var alias: String?
    public var allowAnyInitiator: Bool?
    public init(iqn: String, alias: String? = nil, allowAnyInitiator: Bool? = nil) {
        self.iqn = iqn
        self.alias = alias
        self.allowAnyInitiator = allowAnyInitiator
    }
}

public struct MapLUNRequest: Codable, Sendable {
    /// `POOL/NAME`
    public var volume: String
    public var lun: Int?
    public var readOnly: Bool?
    public init(volume: String, lun: Int? = nil, readOnly: Bool? = nil) {
        self.volume = volume
        self.lun = lun
        self.readOnly = readOnly
    }
}

public struct ACLRequest: Codable, Sendable {
    public var initiator: String
    /// The networks (CIDR, IPv4 or IPv6; a bare address is one host) the
    /// initiator is admitted from; absent or empty: any address.
    public var networks: [String]?
    public init(initiator: String, networks: [String]? = nil) {
        self.initiator = initiator
        self.networks = networks
    }
}

/// PUT /v1/targets/{iqn}/portals: the daemon portals (HOST:PORT, as
/// `depotd --portal` listens on them) the target is served on; null: all.
public struct SetPortalsRequest: Codable, Sendable {
    public var portals: [String]?
    public init(portals: [String]?) { self.portals = portals }

    enum CodingKeys: CodingKey { case portals }

    /// `portals` must be there, a list or `null`: an empty body `{}` is not
    /// taken for "every portal" (Docs/openapi.yaml: required).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.contains(.portals) else {
            throw DecodingError.keyNotFound(
                CodingKeys.portals,
                .init(codingPath: [], debugDescription: "give portals: a list, or null for every portal"))
        }
        portals = try container.decode([String]?.self, forKey: .portals)
    }
    /// `null` is written, not left out: all portals is said, not implied.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(portals, forKey: .portals)
    }
}

/// PUT /v1/targets/{iqn}/chap. Secrets are 12-16 characters (the Windows
/// initiator's rule), and the mutual pair is given together or not at all.
public struct CHAPRequest: Codable, Sendable {
    public var user: String
    public var secret: String
    public var mutualUser: String?
    public var mutualSecret: String?
    public init(user: String, secret: String, mutualUser: String? = nil, mutualSecret: String? = nil) {
        self.user = user
        self.secret = secret
        self.mutualUser = mutualUser
        self.mutualSecret = mutualSecret
    }

    public func validate() throws(DepotError) {
        func check(_ user: String, _ secret: String, _ label: String) throws(DepotError) {
            guard !user.isEmpty, user.utf8.count <= 255, !user.contains("\0"), !user.contains("=") else {
                throw .invalidArgument("\(label) user must be 1-255 characters without '=' or NUL")
            }
            guard (12...16).contains(secret.count), !secret.contains("\0") else {
                throw .invalidArgument("\(label) secret must be 12 to 16 characters")
            }
        }
        try check(user, secret, "CHAP")
        switch (mutualUser, mutualSecret) {
        case (nil, nil): break
        case (let u?, let s?):
            try check(u, s, "mutual CHAP")
            // A rule across fields, which a schema cannot say: 422, not 400.
            if s == secret { throw .unprocessable("the mutual CHAP secret must differ from the CHAP secret") }
        default: throw .invalidArgument("give both the mutual CHAP user and secret, or neither")
        }
    }
}

/// A logged-in iSCSI session (`GET /v1/sessions`).
public struct SessionInfo: Codable, Sendable, Equatable {
    public var initiator: String
    /// nil for a discovery session.
    public var target: String?
    public var portal: String
    public var peer: String
    public var isid: String
    public var tsih: Int
    public var parameters: [String: String]
    public var commandsInFlight: Int
    public var connectedSeconds: Int

    public init(
        initiator: String, target: String?, portal: String, peer: String, isid: String, tsih: Int,
        parameters: [String: String],
        commandsInFlight: Int, connectedSeconds: Int
    ) {
        self.initiator = initiator
        self.target = target
        self.portal = portal
        self.peer = peer
        self.isid = isid
        self.tsih = tsih
        self.parameters = parameters
        self.commandsInFlight = commandsInFlight
        self.connectedSeconds = connectedSeconds
    }
}

public struct SessionList: Codable, Sendable {
    public var sessions: [SessionInfo]
    public init(sessions: [SessionInfo]) { self.sessions = sessions }
}

/// ALUA access state of a target portal group (SPC-4 §5.16.2.4), as the
/// API and CLI name it.
public enum PortalGroupState: String, Codable, Sendable, CaseIterable {
    case activeOptimized = "active-optimized"
    case activeNonOptimized = "active-non-optimized"
    case standby
    case unavailable

    /// Serves I/O (active/optimized or active/non-optimized, SPC-4 §5.16.2).
    public var isActive: Bool { self == .activeOptimized || self == .activeNonOptimized }

    /// ASYMMETRIC ACCESS STATE code (SPC-4 table 167).
    public var code: UInt8 {
        switch self {
        case .activeOptimized: 0x0
        case .activeNonOptimized: 0x1
        case .standby: 0x2
        case .unavailable: 0x3
        }
    }

    public init?(code: UInt8) {
        guard let state = Self.allCases.first(where: { $0.code == code }) else { return nil }
        self = state
    }
}

/// One target portal group: each daemon portal is a group of its own,
/// numbered from 1 in `--portal` order.
public struct PortalGroupInfo: Codable, Sendable, Equatable {
    public var group: Int
    public var portal: String
    public var state: PortalGroupState
    public init(group: Int, portal: String, state: PortalGroupState) {
        self.group = group
        self.portal = portal
        self.state = state
    }
}

public struct PortalGroupList: Codable, Sendable {
    public var portalGroups: [PortalGroupInfo]
    public init(portalGroups: [PortalGroupInfo]) { self.portalGroups = portalGroups }
}

public struct SetPortalGroupStateRequest: Codable, Sendable {
    public var state: PortalGroupState
    /// Allows a state that leaves the target with no active portal group.
    public var force: Bool?
    public init(state: PortalGroupState, force: Bool? = nil) {
        self.state = state
        self.force = force
    }
}
