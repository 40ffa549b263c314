import DepotCore
import DepotSCSI
import Foundation
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
    /// ALUA access state codes by portal group (SPC-4 §5.16); absent: active/optimized.
    public var portalGroupStates: [UInt16: UInt8]
    /// The networks an ACL entry admits its initiator from (storage VLANs);
    /// an initiator without an entry here is admitted from any address.
    public var networks: [String: [NetworkPrefix]]
    /// The daemon portals (HOST:PORT, as `TargetDirectory.portals` names
    /// them) the target is served on; nil: all. Login and discovery through
    /// any other neither admit nor list it.
    public var portals: Set<String>?

    public init(
        iqn: String, alias: String?, allowAnyInitiator: Bool, initiators: Set<String>, luns: [UInt16: LogicalUnit],
        chap: CHAPCredentials? = nil, portalGroupStates: [UInt16: UInt8] = [:],
        networks: [String: [NetworkPrefix]] = [:], portals: Set<String>? = nil
    ) {
        self.portalGroupStates = portalGroupStates
        self.networks = networks
        self.portals = portals
        self.chap = chap
        self.iqn = iqn
        self.alias = alias
        self.allowAnyInitiator = allowAnyInitiator
        self.initiators = initiators
        self.luns = luns
    }

    /// Whether `initiator` may log in from `address` (the peer's host, as the socket reports it).
    public func admits(_ initiator: String, from address: String) -> Bool {
        if allowAnyInitiator { return true }
        let name = initiator.lowercased()
        guard initiators.contains(name) else { return false }
        guard let allowed = networks[name] else { return true }
        return allowed.contains { $0.contains(address) }
    }

    /// Whether the target is served on `portal` (nil: a portal the directory
    /// does not know, which only an unbound target is served on).
    public func served(at portal: String?) -> Bool {
        guard let portals else { return true }
        return portal.map { portals.contains($0) } ?? false
    }
}

/// The targets the transport serves, swapped whole when management changes
/// them; each command looks its LUN up afresh, so mapping and unmapping
/// apply to live sessions at once.
public final class TargetDirectory: Sendable {
    private let targets = NIOLockedValueBox<(generation: UInt64, byName: [String: TargetDefinition])>((1, [:]))
    public let sessions = SessionRegistry()
    /// Per volume, the nexuses that have been told of the power-on unit
    /// attention, oldest first. Bounded: past `contactsKept` nexuses of a
    /// volume the oldest are forgotten (a forgotten nexus meets 29h/00h once
    /// more, which initiators retry on), so a peer inventing ISIDs cannot grow
    /// the daemon without end.
    private let poweredOnNexuses = NIOLockedValueBox<[UUID: (seen: Set<ITNexus>, order: [ITNexus])]>([:])
    static let contactsKept = 4096

    /// Failed logins per initiator and address (`--auth-failures`, `--auth-lockout`).
    public let logins: LoginThrottle

    public init(logins: LoginThrottle = LoginThrottle()) {
        self.logins = logins
    }

    public typealias LoginFailureReporter = @Sendable (LoginFailure) -> Void
    private let loginFailureReporter = NIOLockedValueBox<LoginFailureReporter?>(nil)

    /// Called for every refused login (authentication, authorization, lockout): the audit log.
    public func onLoginFailure(_ reporter: @escaping LoginFailureReporter) {
        loginFailureReporter.withLockedValue { $0 = reporter }
    }

    func reportLoginFailure(_ failure: LoginFailure) {
        loginFailureReporter.withLockedValue { $0 }?(failure)
    }

    /// Swaps the targets in; returns the sessions it closed because the new
    /// definitions no longer admit them (see `SessionRegistry.closeSessions(notAdmittedBy:)`).
    @discardableResult
    public func replace(_ definitions: [TargetDefinition]) -> [SessionSnapshot] {
        let byName = Dictionary(uniqueKeysWithValues: definitions.map { ($0.iqn, $0) })
        let before = targets.withLockedValue { state in
            defer { state = (state.generation + 1, byName) }
            return state.byName
        }
        // A deleted target's sessions are the deletion's business (refused, or closed with force).
        let closed = sessions.closeSessions { target, initiator, access in
            guard let now = byName[target] else { return true }
            return now.served(at: access.portal) && now.admits(initiator, from: access.host)
        }
        // A changed access state is told to every nexus of the target's LUs
        // (SPC-4 §5.16.2.6: ASYMMETRIC ACCESS STATE CHANGED).
        for target in definitions
        where before[target.iqn].map({ $0.portalGroupStates != target.portalGroupStates }) ?? false {
            for lu in target.luns.values { lu.announce(.asymmetricAccessStateChanged, except: nil) }
        }
        return closed
    }

    /// The portals the service listens on; portal group N is the Nth (from 1).
    public var portals: [String] { portalList.withLockedValue { $0 } }
    private let portalList = NIOLockedValueBox<[String]>([])

    public func setPortals(_ portals: [String]) { portalList.withLockedValue { $0 = portals } }

    /// The portal of portal group `group` (numbered from 1); nil when there is none.
    public func portal(group: UInt16) -> String? {
        let list = portals
        let index = Int(group) - 1
        return list.indices.contains(index) ? list[index] : nil
    }

    /// Stores access states SET TARGET PORT GROUPS asked for (the target
    /// manager puts them in the catalog and rebuilds).
    public typealias PortalGroupWriter = @Sendable (_ iqn: String, _ states: [UInt16: UInt8]) async throws -> Void
    private let portalGroupWriter = NIOLockedValueBox<PortalGroupWriter?>(nil)

    public func onSetPortalGroups(_ writer: @escaping PortalGroupWriter) {
        portalGroupWriter.withLockedValue { $0 = writer }
    }

    func setPortalGroups(_ iqn: String, _ states: [UInt16: UInt8]) async throws {
        guard let writer = portalGroupWriter.withLockedValue({ $0 }) else { throw PortalGroupError.notStored }
        try await writer(iqn, states)
    }

    enum PortalGroupError: Error { case notStored }

    /// The portal groups `iqn` is served on: those of the portals it is bound
    /// to, or every group of the daemon when it is not bound.
    func servedGroups(of iqn: String) -> [UInt16] {
        let all = portals
        let target = target(iqn)
        return all.indices.compactMap { index in
            let group = UInt16(clamping: index + 1)
            return target?.served(at: all[index]) ?? true ? group : nil
        }
    }

    public func target(_ iqn: String) -> TargetDefinition? {
        targets.withLockedValue { $0.byName[iqn.lowercased()] }
    }

    /// The LUN map of `iqn` when the directory has moved past `generation`
    /// (bumped by every `replace`): a connection re-reads its map only then.
    func luns(of iqn: String, ifChangedSince generation: UInt64) -> (
        generation: UInt64, luns: [UInt16: LogicalUnit], portalGroups: [UInt16: UInt8]
    )? {
        targets.withLockedValue { state in
            state.generation == generation
                ? nil : (state.generation, state.byName[iqn]?.luns ?? [:], state.byName[iqn]?.portalGroupStates ?? [:])
        }
    }

    /// True the first time `nexus` meets the LU of `volume` since the daemon
    /// started (or since a cold reset of a target mapping it).
    func firstContact(volume: UUID, nexus: ITNexus) -> Bool {
        poweredOnNexuses.withLockedValue { all in
            var entry = all[volume] ?? ([], [])
            guard entry.seen.insert(nexus).inserted else { return false }
            entry.order.append(nexus)
            if entry.order.count > Self.contactsKept {
                let dropped = entry.order.count - Self.contactsKept
                for old in entry.order.prefix(dropped) { entry.seen.remove(old) }
                entry.order.removeFirst(dropped)
            }
            all[volume] = entry
            return true
        }
    }

    /// A cold reset powers the LU of `volume` off and on: every nexus meets the power-on unit attention again.
    func forgetContacts(volume: UUID) {
        _ = poweredOnNexuses.withLockedValue { $0.removeValue(forKey: volume) }
    }

    /// The LU a copy descriptor (EXTENDED COPY, WRITE USING TOKEN) names by
    /// its NAA designator, among the LUs the requesting nexus may reach: those
    /// of its own target, and of other targets that admit the initiator and to
    /// which it is logged in now — so a target's CHAP and ACL hold for copies
    /// too (CVE-2020-28374: LIO resolved any LU of the system). nil otherwise.
    func copyTarget(_ designator: [UInt8], for initiator: String, at address: String, from own: String?)
        -> LogicalUnit?
    {
        let byName = targets.withLockedValue { $0.byName }
        func find(_ target: TargetDefinition) -> LogicalUnit? {
            target.luns.values.first { $0.naaDesignator == designator }
        }
        if let own, let target = byName[own.lowercased()], let lu = find(target) { return lu }
        let loggedIn = sessions.targets(of: initiator)
        for target in byName.values
        where target.iqn.lowercased() != own?.lowercased() && target.admits(initiator, from: address)
            && loggedIn.contains(target.iqn.lowercased())
        {
            if let lu = find(target) { return lu }
        }
        return nil
    }

    public var all: [TargetDefinition] {
        targets.withLockedValue { Array($0.byName.values) }.sorted { $0.iqn < $1.iqn }
    }
}
