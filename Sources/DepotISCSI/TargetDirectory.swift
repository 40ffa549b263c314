import Foundation
import DepotSCSI
import NIOConcurrencyHelpers

/// What one target offers: its LUNs and who may log in.
public struct TargetDefinition: Sendable {
    public var iqn: String
    public var alias: String?
    public var allowAnyInitiator: Bool
    public var initiators: Set<String>
    public var luns: [UInt16: LogicalUnit]
    /// When set, logins must authenticate with CHAP.
    public var chap: CHAPCredentials?

    public init(
        iqn: String, alias: String?, allowAnyInitiator: Bool, initiators: Set<String>, luns: [UInt16: LogicalUnit],
        chap: CHAPCredentials? = nil
    ) {
        self.chap = chap
        self.iqn = iqn
        self.alias = alias
        self.allowAnyInitiator = allowAnyInitiator
        self.initiators = initiators
        self.luns = luns
    }

    public func admits(_ initiator: String) -> Bool {
        allowAnyInitiator || initiators.contains(initiator.lowercased())
    }
}

/// The targets the transport serves, swapped whole when management changes
/// them; each command looks its LUN up afresh, so mapping and unmapping
/// apply to live sessions at once.
public final class TargetDirectory: Sendable {
    private let targets = NIOLockedValueBox<(generation: UInt64, byName: [String: TargetDefinition])>((1, [:]))
    public let sessions = SessionRegistry()
    /// "volume|nexus" pairs that have been told of the power-on unit attention.
    private let poweredOnNexuses = NIOLockedValueBox<Set<String>>([])

    public init() {}

    public func replace(_ definitions: [TargetDefinition]) {
        let byName = Dictionary(uniqueKeysWithValues: definitions.map { ($0.iqn, $0) })
        targets.withLockedValue { $0 = ($0.generation + 1, byName) }
    }

    public func target(_ iqn: String) -> TargetDefinition? {
        targets.withLockedValue { $0.byName[iqn.lowercased()] }
    }

    /// The LUN map of `iqn` when the directory has moved past `generation`
    /// (bumped by every `replace`): a connection re-reads its map only then.
    func luns(of iqn: String, ifChangedSince generation: UInt64) -> (generation: UInt64, luns: [UInt16: LogicalUnit])? {
        targets.withLockedValue { state in
            state.generation == generation ? nil : (state.generation, state.byName[iqn]?.luns ?? [:])
        }
    }

    /// True the first time `nexus` meets the LU of `volume` since the daemon started.
    func firstContact(volume: UUID, nexus: String) -> Bool {
        poweredOnNexuses.withLockedValue { $0.insert("\(volume)|\(nexus)").inserted }
    }

    /// The LU with NAA designator `designator` among the targets `initiator`
    /// may log into: what a copy command of that initiator may name as a
    /// copy target (EXTENDED COPY, WRITE USING TOKEN across LUNs).
    func copyTarget(_ designator: [UInt8], for initiator: String) -> LogicalUnit? {
        let targets = targets.withLockedValue { Array($0.byName.values) }
        for target in targets where target.admits(initiator) {
            if let lu = target.luns.values.first(where: { $0.naaDesignator == designator }) { return lu }
        }
        return nil
    }

    public var all: [TargetDefinition] {
        targets.withLockedValue { Array($0.byName.values) }.sorted { $0.iqn < $1.iqn }
    }
}
