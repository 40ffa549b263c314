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
    public init(iqn: String, alias: String?, allowAnyInitiator: Bool, initiators: [String], luns: [LUNInfo], createdAt: String) {
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
    public init(initiator: String) { self.initiator = initiator }
}
