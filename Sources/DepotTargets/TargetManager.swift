import DepotBlock
import DepotBackstores
import DepotCatalog
import DepotCore
import DepotISCSI
import DepotSCSI
import DepotStorage
import Foundation
import Logging

/// iSCSI targets, LUN maps and ACLs: stored in the catalog, pushed to the
/// transport's `TargetDirectory` after every change so live sessions see
/// them at once.
///
/// The catalog is reached through GRDB's async API, so the actor is
/// reentrant at each call: every change (its checks, its catalog write and
/// the rebuild of the transport's view) runs inside `changes`, one at a time.
public actor TargetManager {
    let catalog: Catalog
    let changes = ChangeQueue()
    let storage: StorageManager
    public nonisolated let directory: TargetDirectory
    let logger: Logger
    /// Logical units (and their open backstores) by volume, access mode and
    /// size, reused across rebuilds: reservations and identity survive
    /// management changes that do not touch them.
    var units: [String: LogicalUnit] = [:]
    /// Persistent reservations by volume id: one per volume, whichever LU
    /// objects serve it (a resize makes a new LU, not new reservations).
    var reservations: [Int64: PersistentReservations] = [:]

    public init(catalog: Catalog, storage: StorageManager, directory: TargetDirectory, logger: Logger) {
        self.catalog = catalog
        self.storage = storage
        self.directory = directory
        self.logger = logger
    }

    public func list() async throws(DepotError) -> [TargetInfo] {
        let volumes = try await volumeNames()
        let luns = Dictionary(grouping: try await catalog.luns(), by: \.targetId)
        let acls = Dictionary(grouping: try await catalog.acls(), by: \.targetId)
        return try await catalog.targets().map { t in
            info(t, luns: luns[t.id!] ?? [], acls: acls[t.id!] ?? [], volumes: volumes)
        }
    }

    public func show(_ iqn: String) async throws(DepotError) -> TargetInfo {
        let t = try await requireTarget(iqn)
        return await info(
            t, luns: try await catalog.luns(targetId: t.id!),
            acls: try await catalog.acls(targetId: t.id!),
            volumes: try volumeNames())
    }

    public func create(_ request: CreateTargetRequest) async throws(DepotError) -> TargetInfo {
        try await changes.run { () async throws(DepotError) -> TargetInfo in
            let iqn = try ISCSIName.validate(request.iqn)
            if let alias = request.alias, alias.utf8.count > 255 || alias.contains("\0") {
                throw .invalidArgument("alias must be at most 255 bytes without NUL")
            }
            let record = TargetRecord(
                iqn: iqn, alias: request.alias, allowAny: request.allowAnyInitiator ?? false, createdAt: Timestamp.now()
            )
            try await catalog.insertTarget(record)
            try await reload()
            logger.info("target created", metadata: ["iqn": "\(iqn)"])
            return try await show(iqn)
        }
    }

    public nonisolated func sessions() -> [SessionInfo] {
        directory.sessions.all.map { s in
            SessionInfo(
                initiator: s.initiator, target: s.target, portal: s.portal, peer: s.peer, isid: s.isid,
                tsih: Int(s.tsih),
                parameters: s.parameters, commandsInFlight: s.commandsInFlight,
                connectedSeconds: Int((ContinuousClock.now - s.loggedInAt).components.seconds))
        }
    }

    /// Deleting a target with sessions logged in is refused unless `force`,
    /// which closes them first.
    public func delete(_ iqn: String, force: Bool = false) async throws(DepotError) {
        try await changes.run { () async throws(DepotError) in
            let t = try await requireTarget(iqn)
            let live = directory.sessions.all.filter { $0.target == t.iqn }
            if !live.isEmpty {
                guard force else {
                    throw .conflict(
                        "target \(t.iqn) has \(live.count) session(s) logged in (\(live.map(\.initiator).joined(separator: ", "))); use --force"
                    )
                }
                directory.sessions.closeSessions(of: t.iqn)
            }
            try await catalog.deleteTarget(id: t.id!)
            try await reload()
            logger.info("target deleted", metadata: ["iqn": "\(t.iqn)"])
        }
    }

    public func map(_ iqn: String, _ request: MapLUNRequest) async throws(DepotError) -> TargetInfo {
        try await changes.run { () async throws(DepotError) -> TargetInfo in
            let t = try await requireTarget(iqn)
            let ref = try VolumeRef(parsing: request.volume)
            let volume = try await storage.volume(ref)
            guard volume.state == .ready else {
                throw .conflict("volume \(ref) is \(volume.state.rawValue), not ready")
            }
            guard let pool = try await catalog.pool(named: ref.pool),
                let record = try await catalog.volume(poolId: pool.id!, name: ref.name)
            else { throw .notFound("volume '\(ref)' not found") }
            if let lun = request.lun, !(0...16383).contains(lun) {
                throw .invalidArgument("LUN must be 0-16383, got \(lun)")
            }
            _ = try await catalog.mapLUN(
                targetId: t.id!, volumeId: record.id!, lun: request.lun, readOnly: request.readOnly ?? false,
                volumeName: "\(ref)", targetIQN: t.iqn)
            try await reload()
            return try await show(iqn)
        }
    }

    /// Resizes a volume, then gives its LUNs the new size (and their sessions
    /// CAPACITY DATA HAS CHANGED): storage and the LUN map change together here.
    public func resizeVolume(_ ref: VolumeRef, sizeBytes: UInt64, force: Bool) async throws(DepotError) -> VolumeInfo {
        // The volume changes in the storage manager (its own change queue, and
        // the file work outside it); then the view is rebuilt as a change here.
        let info = try await storage.resizeVolume(ref, sizeBytes: sizeBytes, force: force)
        try await rebuild()
        return info
    }

    /// Renames a volume, then rebuilds the LUN map that names it.
    public func renameVolume(_ ref: VolumeRef, to name: String) async throws(DepotError) -> VolumeInfo {
        // The volume changes in the storage manager (its own change queue, and
        // the file work outside it); then the view is rebuilt as a change here.
        let info = try await storage.renameVolume(ref, to: name)
        try await rebuild()
        return info
    }

    /// The LUNs `ref` is mapped as, on every target.
    public func lunMaps(of ref: VolumeRef) async throws(DepotError) -> [VolumeLUN] {
        guard let pool = try await catalog.pool(named: ref.pool),
            let record = try await catalog.volume(poolId: pool.id!, name: ref.name)
        else { return [] }
        return try await catalog.lunMaps(volumeId: record.id!).map {
            VolumeLUN(target: $0.iqn, lun: Int($0.lun), readOnly: $0.readOnly)
        }
    }

    public func unmap(_ iqn: String, lun: Int) async throws(DepotError) -> TargetInfo {
        try await changes.run { () async throws(DepotError) -> TargetInfo in
            let t = try await requireTarget(iqn)
            guard try await catalog.unmapLUN(targetId: t.id!, lun: lun) else {
                throw .notFound("LUN \(lun) of \(t.iqn) is not mapped")
            }
            try await reload()
            return try await show(iqn)
        }
    }

    /// Allows an initiator on the target; from `networks` only (CIDR, IPv4
    /// or IPv6) when any are given.
    public func addACL(_ iqn: String, initiator: String, networks: [String] = []) async throws(DepotError)
        -> TargetInfo
    {
        try await changes.run { () async throws(DepotError) -> TargetInfo in
            let t = try await requireTarget(iqn)
            let name = try ISCSIName.validate(initiator)
            guard networks.count <= 64 else { throw .invalidArgument("at most 64 networks per initiator") }
            var prefixes: [String] = []
            for text in networks {
                let prefix = try NetworkPrefix(parsing: text).description
                if !prefixes.contains(prefix) { prefixes.append(prefix) }
            }
            try await catalog.addACL(
                targetId: t.id!, initiator: name, networks: prefixes.isEmpty ? nil : prefixes.joined(separator: ","),
                targetIQN: t.iqn)
            try await reload()
            return try await show(iqn)
        }
    }

    public func removeACL(_ iqn: String, initiator: String) async throws(DepotError) -> TargetInfo {
        try await changes.run { () async throws(DepotError) -> TargetInfo in
            let t = try await requireTarget(iqn)
            let name = try ISCSIName.validate(initiator)
            guard try await catalog.removeACL(targetId: t.id!, initiator: name) else {
                throw .notFound("\(name) is not in the ACL of \(t.iqn)")
            }
            try await reload()
            return try await show(iqn)
        }
    }

    /// Serves the target on some of the daemon's portals only (nil: on all);
    /// each must be one the daemon listens on. Applies to new logins and
    /// discovery; sessions logged in through another portal stay.
    public func setPortals(_ iqn: String, _ portals: [String]?) async throws(DepotError) -> TargetInfo {
        try await changes.run { () async throws(DepotError) -> TargetInfo in
            var t = try await requireTarget(iqn)
            if let portals {
                let known = directory.portals
                guard !portals.isEmpty else {
                    throw .invalidArgument("give at least one portal, or all of them (null / --all)")
                }
                var chosen: [String] = []
                for portal in portals {
                    guard let match = known.first(where: { Self.samePortal($0, portal) }) else {
                        throw .unprocessable(
                            "\(portal) is not a portal of this daemon; its portals are \(known.joined(separator: ", "))"
                        )
                    }
                    if !chosen.contains(match) { chosen.append(match) }
                }
                t.portals = chosen.joined(separator: ",")
            } else {
                t.portals = nil
            }
            try await catalog.updateTarget(t)
            try await reload()
            logger.info("target portals set", metadata: ["iqn": "\(t.iqn)", "portals": "\(t.portals ?? "all")"])
            return try await show(iqn)
        }
    }

    /// Whether two HOST:PORT texts name one portal (the host compared as an
    /// address where it is one, so `[::1]:3260` and `[0:0::1]:3260` match).
    static func samePortal(_ a: String, _ b: String) -> Bool {
        func split(_ text: String) -> (host: String, port: Substring)? {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            var host = text[..<colon]
            if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            return (String(host), text[text.index(after: colon)...])
        }
        guard let x = split(a), let y = split(b), x.port == y.port else { return false }
        if let p = NetworkPrefix.address(x.host), let q = NetworkPrefix.address(y.host) { return p == q }
        return x.host.lowercased() == y.host.lowercased()
    }

    /// Requires CHAP for logins to the target (applies to new logins).
    public func setCHAP(_ iqn: String, _ request: CHAPRequest) async throws(DepotError) -> TargetInfo {
        try await changes.run { () async throws(DepotError) -> TargetInfo in
            var t = try await requireTarget(iqn)
            try request.validate()
            t.chapUser = request.user
            t.chapSecret = request.secret
            t.mutualUser = request.mutualUser
            t.mutualSecret = request.mutualSecret
            try await catalog.updateTarget(t)
            try await reload()
            logger.info("CHAP set", metadata: ["iqn": "\(t.iqn)", "mutual": "\(request.mutualSecret != nil)"])
            return try await show(iqn)
        }
    }

    public func clearCHAP(_ iqn: String) async throws(DepotError) -> TargetInfo {
        try await changes.run { () async throws(DepotError) -> TargetInfo in
            var t = try await requireTarget(iqn)
            t.chapUser = nil
            t.chapSecret = nil
            t.mutualUser = nil
            t.mutualSecret = nil
            try await catalog.updateTarget(t)
            try await reload()
            return try await show(iqn)
        }
    }

    /// Reads targets, LUNs and ACLs from the catalog and swaps the transport's
    /// view; after the changes before it (one at a time, so a rebuild that
    /// read an older catalog never replaces a newer view).
    public func rebuild() async throws(DepotError) {
        try await changes.run { () async throws(DepotError) in try await reload() }
    }

    private func reload() async throws(DepotError) {
        let pools = Dictionary(uniqueKeysWithValues: try await catalog.pools().map { ($0.id!, $0) })
        let volumes = Dictionary(uniqueKeysWithValues: try await catalog.volumes().map { ($0.id!, $0) })
        let lunRows = Dictionary(grouping: try await catalog.luns(), by: \.targetId)
        let acls = Dictionary(grouping: try await catalog.acls(), by: \.targetId)
        let groupStates = try await catalog.portalGroupStates()
        let savedReservations = try await catalog.persistentReservations()
        // Reservations of deleted volumes go; those of unmapped ones stay for a later map.
        reservations = reservations.filter { volumes[$0.key] != nil }
        var definitions: [TargetDefinition] = []
        var used = Set<String>()
        for t in try await catalog.targets() {
            var luns: [UInt16: LogicalUnit] = [:]
            for row in lunRows[t.id!] ?? [] {
                guard let v = volumes[row.volumeId], let pool = pools[v.poolId] else { continue }
                // The size is in the key: a resized volume gets a new device, which
                // sessions notice as CAPACITY DATA HAS CHANGED.
                // Not the format: a snapshot swaps the backstore under the same LU.
                let key = "\(v.id!):\(row.readOnly):\(v.sizeBytes)"
                used.insert(key)
                do {
                    let unit =
                        try units[key]
                        ?? LogicalUnit(
                            device: device(
                                path: pool.path + "/" + v.fileName, volume: v, readOnly: row.readOnly),
                            uuid: UUID(uuidString: v.uuid) ?? UUID(), name: "\(pool.name)/\(v.name)",
                            readOnly: row.readOnly,
                            persistentReservations: persistentReservations(
                                volumeId: v.id!, saved: savedReservations[v.id!]))
                    units[key] = unit
                    luns[UInt16(row.lun)] = unit
                } catch {
                    logger.error(
                        "cannot open LUN backstore",
                        metadata: ["target": "\(t.iqn)", "lun": "\(row.lun)", "error": "\(error)"])
                }
            }
            var chap: CHAPCredentials?
            if let user = t.chapUser, let secret = t.chapSecret {
                chap = CHAPCredentials(
                    user: user, secret: secret, mutualUser: t.mutualUser, mutualSecret: t.mutualSecret)
            }
            var states: [UInt16: UInt8] = [:]
            for (group, name) in groupStates[t.id!] ?? [:] {
                if let state = PortalGroupState(rawValue: name), let number = UInt16(exactly: group) {
                    states[number] = state.code
                }
            }
            // Stored networks were validated when added; one that no longer parses
            // admits nothing rather than everything.
            var networks: [String: [NetworkPrefix]] = [:]
            for acl in acls[t.id!] ?? [] {
                guard let list = acl.networks else { continue }
                networks[acl.initiator.lowercased()] = list.split(separator: ",").compactMap {
                    try? NetworkPrefix(parsing: String($0))
                }
            }
            definitions.append(
                TargetDefinition(
                    iqn: t.iqn, alias: t.alias, allowAnyInitiator: t.allowAny,
                    initiators: Set((acls[t.id!] ?? []).map(\.initiator)), luns: luns,
                    chap: chap, portalGroupStates: states, networks: networks,
                    portals: t.portals.map { Set($0.split(separator: ",").map(String.init)) }))
        }
        for key in units.keys where !used.contains(key) { units[key] = nil }
        for session in directory.replace(definitions) {
            logger.notice(
                "session closed: its access was withdrawn",
                metadata: [
                    "initiator": "\(session.initiator)", "target": "\(session.target ?? "")", "peer": "\(session.peer)",
                ])
        }
        // A volume no LU serves any more is closed (its image flushed, reservations given back).
        await storage.openVolumes.keep(only: Set(units.values.map { ObjectIdentifier($0.device as AnyObject) }))
    }

    /// The volume's device (`OpenVolumes`: one per volume, shared by all its
    /// LUs, read only or not — the LU refuses writes to a read-only map), over
    /// the backstore of its active layer's format. A refused or corrupt
    /// qcow2 image throws, and the LUN stays offline.
    func device(path: String, volume v: VolumeRecord, readOnly: Bool) throws -> any BlockDevice {
        let storage = self.storage
        let id = v.id!
        return try storage.openVolumes.device(
            id: id, path: path, format: v.volumeFormat == .qcow2 ? .qcow2 : .raw, blockSize: Int(v.blockSize),
            sizeBytes: UInt64(v.sizeBytes), thin: v.provisioningKind == .thin, latched: v.flushError,
            onLatch: { reason in Task { await storage.recordFlushFailure(volumeId: id, reason) } })
    }

    /// At shutdown: every open qcow2 image flushed (its tables written) and
    /// its unused reservations given back, so a clean stop leaves no leaks.
    public func closeImages() async {
        for (id, error) in await storage.openVolumes.closeAll() {
            logger.error("volume not closed cleanly", metadata: ["volume": "\(id)", "error": "\(error)"])
        }
    }

    /// Rolls a volume back to a snapshot (the storage manager swaps its
    /// layer), then tells every nexus of its LUs MEDIUM MAY HAVE CHANGED
    /// (SPC-4 §6.7.3: the medium may have been changed since last accessed).
    public func rollbackVolume(_ ref: SnapshotRef, force: Bool) async throws(DepotError) -> VolumeInfo {
        let info = try await storage.rollback(ref, force: force)
        if let pool = try await catalog.pool(named: ref.volume.pool),
            let id = try await catalog.volume(poolId: pool.id!, name: ref.volume.name)?.id
        {
            for (key, unit) in units where key.hasPrefix("\(id):") { unit.announce(.mediumMayHaveChanged, except: nil) }
        }
        return info
    }

    /// The target's portal groups (one per daemon portal) and their ALUA states.
    public func portalGroups(_ iqn: String) async throws(DepotError) -> [PortalGroupInfo] {
        let t = try await requireTarget(iqn)
        let states = try await catalog.portalGroupStates()[t.id!] ?? [:]
        return directory.portals.enumerated().map { index, portal in
            PortalGroupInfo(
                group: index + 1, portal: portal,
                state: states[index + 1].flatMap(PortalGroupState.init(rawValue:)) ?? .activeOptimized)
        }
    }

    /// `depot target portal-group set-state`: stored, then every nexus of the
    /// target's LUs is told (ASYMMETRIC ACCESS STATE CHANGED).
    public func setPortalGroupState(_ iqn: String, group: Int, state: PortalGroupState, force: Bool = false)
        async throws(DepotError) -> [PortalGroupInfo]
    {
        try await changes.run { () async throws(DepotError) -> [PortalGroupInfo] in
            let t = try await requireTarget(iqn)
            let count = directory.portals.count
            guard group >= 1, group <= count else {
                throw .notFound(
                    "portal group \(group) does not exist (this daemon has \(count) portal\(count == 1 ? "" : "s"), groups 1...\(count))"
                )
            }
            // Maintenance moves initiators to the other paths; with no active path left
            // every initiator loses I/O to the target's LUNs, so that needs saying so.
            if !force, state == .standby || state == .unavailable {
                let after = try await portalGroups(iqn).map { $0.group == group ? state : $0.state }
                if !after.contains(where: \.isActive) {
                    throw .conflict(
                        "setting portal group \(group) of \(t.iqn) to \(state.rawValue) leaves it no active portal group: every initiator would lose "
                            + "I/O to its LUNs until one is active again; nothing was changed (force to do it anyway)")
                }
            }
            try await catalog.setPortalGroupState(targetId: t.id!, groupId: group, state: state.rawValue)
            try await reload()
            logger.info(
                "portal group state set",
                metadata: ["iqn": "\(t.iqn)", "group": "\(group)", "state": "\(state.rawValue)"])
            return try await portalGroups(iqn)
        }
    }

    /// SET TARGET PORT GROUPS from an initiator: the same, several groups at once.
    public func setPortalGroupStates(_ iqn: String, _ states: [UInt16: UInt8]) async throws {
        for (group, code) in states.sorted(by: { $0.key < $1.key }) {
            guard let state = PortalGroupState(code: code) else { continue }
            // The initiator asked for these states itself (SPC-4 §6.42).
            _ = try await setPortalGroupState(iqn, group: Int(group), state: state, force: true)
        }
    }

    /// Passes the latest capacity figures to every LU: the thin-provisioning
    /// soft threshold (the pool's warning percentage) and exhaustion.
    public func refreshSpace() async {
        do {
            let report = try await storage.capacity()
            let allocated = await storage.allocations()
            let pools = Dictionary(uniqueKeysWithValues: try await catalog.pools().map { ($0.id!, $0.name) })
            let volumes = Dictionary(
                uniqueKeysWithValues: try await catalog.volumes().map { ($0.id!, $0.poolId) })
            let byName = Dictionary(uniqueKeysWithValues: report.pools.map { ($0.name, $0) })
            for (key, unit) in units {
                guard let volumeId = Int64(key.split(separator: ":")[0]), let poolId = volumes[volumeId],
                    let name = pools[poolId], let pool = byName[name]
                else { continue }
                unit.updateSpace(
                    PoolSpace(
                        availableBytes: pool.freeBytes, allocatedBytes: allocated[volumeId] ?? 0,
                        softThresholdReached: pool.usedPercent >= pool.warnPercent))
            }
        } catch {
            logger.error("capacity figures for the LUs could not be read", metadata: ["error": "\(error)"])
        }
    }

    /// The volume's persistent reservations, restored from the catalog the
    /// first time (APTPL), stored back after each change while APTPL is set.
    func persistentReservations(volumeId: Int64, saved json: String?) -> PersistentReservations {
        if let known = reservations[volumeId] { return known }
        var saved: PRState?
        if let json {
            do {
                saved = try JSONDecoder().decode(PRState.self, from: Data(json.utf8))
            } catch {
                logger.error(
                    "stored persistent reservations unreadable; the volume starts without them",
                    metadata: ["volume": "\(volumeId)", "error": "\(error)"])
            }
        }
        let catalog = self.catalog
        let made = PersistentReservations(restoring: saved) { state in
            let json = try state.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
            try catalog.savePersistentReservation(volumeId: volumeId, state: json)
        }
        reservations[volumeId] = made
        return made
    }

    func info(_ t: TargetRecord, luns: [TargetLUNRecord], acls: [TargetACLRecord], volumes: [Int64: String])
        -> TargetInfo
    {
        TargetInfo(
            iqn: t.iqn, alias: t.alias, allowAnyInitiator: t.allowAny, initiators: acls.map(\.initiator),
            luns: luns.map { LUNInfo(lun: Int($0.lun), volume: volumes[$0.volumeId] ?? "?", readOnly: $0.readOnly) },
            createdAt: t.createdAt,
            chapUser: t.chapSecret == nil ? nil : t.chapUser, mutualChap: t.mutualSecret != nil,
            portals: t.portals.map { $0.split(separator: ",").map(String.init) },
            networks: Self.networks(acls))
    }

    /// The networks of the initiators scoped by network; nil when none is.
    static func networks(_ acls: [TargetACLRecord]) -> [String: [String]]? {
        var out: [String: [String]] = [:]
        for acl in acls {
            if let list = acl.networks { out[acl.initiator] = list.split(separator: ",").map(String.init) }
        }
        return out.isEmpty ? nil : out
    }

    func volumeNames() async throws(DepotError) -> [Int64: String] {
        let pools = Dictionary(uniqueKeysWithValues: try await catalog.pools().map { ($0.id!, $0.name) })
        return Dictionary(
            uniqueKeysWithValues: try await catalog.volumes().map {
                ($0.id!, "\(pools[$0.poolId] ?? "?")/\($0.name)")
            })
    }

    func requireTarget(_ iqn: String) async throws(DepotError) -> TargetRecord {
        let name = try ISCSIName.validate(iqn)
        guard let t = try await catalog.target(iqn: name) else { throw .notFound("target \(name) not found") }
        return t
    }

}
