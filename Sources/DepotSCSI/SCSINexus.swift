/// One I_T nexus's side of a SCSI target device (SAM-5 §4.6): the LUN
/// inventory it has seen, its unit attentions (SPC-4 §5.14: established per
/// I_T nexus), and the one entry point every command goes through before an
/// LU runs it (as LIO's `__target_execute_cmd`): pending unit attentions,
/// REPORT LUNS, REQUEST SENSE, INQUIRY and others to an absent LUN, the ALUA
/// gate of the portal group the nexus came through, REPORT and SET TARGET
/// PORT GROUPS. The transport gives it the target's LUN map as it changes
/// and the nexus it named at login; it never builds a SCSI answer itself.
///
/// Owned by one connection and used only on its event loop (not Sendable).
public final class SCSINexus {
    public let nexus: ITNexus
    /// The target portal group (and relative target port) of this nexus.
    public let portalGroup: UInt16
    /// Stores ALUA access states an initiator sets (SET TARGET PORT GROUPS).
    public typealias StorePortalGroups = @Sendable ([UInt16: UInt8]) async throws -> Void
    let storePortalGroups: StorePortalGroups
    private let copyTargets: LogicalUnit.CommandContext.CopyTargets
    private let abortTasks: LogicalUnit.CommandContext.AbortTasks

    /// The target's LUN map as last given, and the portal groups' access states.
    public private(set) var luns: [UInt16: LogicalUnit] = [:]
    var portalGroupStates: [UInt16: UInt8] = [:]
    /// The portal groups the target is served on, ascending (its target ports).
    var portalGroups: [UInt16] = [1]
    /// The map as this nexus last saw it (LU identity and size).
    private var seen: [UInt16: (ObjectIdentifier, UInt64)] = [:]
    private var attentions: [UInt16: [SCSISense]] = [:]
    /// Per LU, where this nexus reads the LU's announced unit attentions from.
    var cursors: [ObjectIdentifier: UInt64] = [:]

    public init(
        nexus: ITNexus, portalGroup: UInt16, copyTargets: @escaping LogicalUnit.CommandContext.CopyTargets,
        abortTasks: @escaping LogicalUnit.CommandContext.AbortTasks, storePortalGroups: @escaping StorePortalGroups
    ) {
        self.nexus = nexus
        self.portalGroup = portalGroup
        self.portalGroups = [portalGroup]
        self.copyTargets = copyTargets
        self.abortTasks = abortTasks
        self.storePortalGroups = storePortalGroups
    }

    // MARK: The LUN map

    /// A new LUN map. Changes since the last are unit attentions for this
    /// nexus: REPORTED LUNS DATA HAS CHANGED (LUNs added, removed, or a LUN
    /// now a different LU of the same size) and CAPACITY DATA HAS CHANGED (a
    /// LUN's size). The first map, given at login, is no change.
    public func update(
        luns: [UInt16: LogicalUnit], portalGroupStates: [UInt16: UInt8], portalGroups: [UInt16], reportChanges: Bool
    ) {
        self.luns = luns
        self.portalGroupStates = portalGroupStates
        self.portalGroups = portalGroups.isEmpty ? [portalGroup] : portalGroups.sorted()
        let now = luns.mapValues { (ObjectIdentifier($0), $0.device.sizeBytes) }
        if reportChanges, !seen.isEmpty || !now.isEmpty {
            let replaced = now.contains { lun, value in seen[lun].map { $0.0 != value.0 && $0.1 == value.1 } ?? false }
            if Set(now.keys) != Set(seen.keys) || replaced {
                for lun in now.keys { establish(.reportedLUNsChanged, on: lun) }
            }
            for (lun, value) in now where seen[lun].map({ $0.1 != value.1 }) ?? false {
                attentions[lun, default: []].append(.capacityChanged)
            }
        }
        seen = now
        for lu in luns.values where cursors[ObjectIdentifier(lu)] == nil {
            cursors[ObjectIdentifier(lu)] = lu.eventCursor
        }
    }

    /// Establishes `sense` on `lun` unless it is already pending; `first`
    /// puts it ahead of the others (POWER ON at login).
    public func establish(_ sense: SCSISense, on lun: UInt16, first: Bool = false) {
        guard !(attentions[lun]?.contains(sense) ?? false) else { return }
        if first {
            attentions[lun, default: []].insert(sense, at: 0)
        } else {
            attentions[lun, default: []].append(sense)
        }
    }

    /// The LU at `lun`, if mapped.
    public func unit(_ lun: UInt16?) -> LogicalUnit? { lun.flatMap { luns[$0] } }

    /// The LU a plain READ or WRITE may run on without the checks (the fast
    /// lane): mapped, no unit attention pending or announced for this nexus,
    /// the portal group active (optimized or not). O(1).
    public func unitWithoutChecks(_ lun: UInt16) -> LogicalUnit? {
        guard let lu = luns[lun], attentions[lun]?.isEmpty ?? true, cursors[ObjectIdentifier(lu)] == lu.eventCursor,
            (portalGroupStates[portalGroup] ?? 0) <= 1
        else { return nil }
        return lu
    }

    // MARK: Commands

    /// Runs one command for this nexus: the checks every command needs, then the LU.
    public func execute(lun: UInt16?, cdb: [UInt8], dataOut: [UInt8]) async -> SCSIResult {
        switch route(lun: lun, cdb: cdb) {
        case .answered(let result):
            return result
        case .setTargetPortGroups:
            return await setTargetPortGroups(cdb: cdb, dataOut: dataOut)
        case .logicalUnit(let lu):
            return await lu.execute(
                cdb: cdb, dataOut: dataOut, nexus: nexus, portalGroup: portalGroup, copyTargets: copyTargets,
                abortTasks: abortTasks)
        }
    }

    private enum Route {
        case answered(SCSIResult)
        case setTargetPortGroups
        case logicalUnit(LogicalUnit)
    }

    private func route(lun number: UInt16?, cdb: [UInt8]) -> Route {
        guard let opcode = cdb.first else { return .answered(.check(.invalidOpcode)) }
        if opcode == 0xA0 {
            // REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED for this nexus (SPC-4 §6.33).
            for lun in attentions.keys { attentions[lun]?.removeAll { $0 == .reportedLUNsChanged } }
            return .answered(ReportLUNs.answer(Array(luns.keys), cdb: cdb))
        }
        guard let number, let lu = luns[number] else {
            switch opcode {
            case 0x12: return .answered(Self.absentLUNInquiry(cdb))
            case 0x03: return .answered(.ok(SCSISense.logicalUnitNotSupported.fixedFormat))
            default: return .answered(.check(.logicalUnitNotSupported))
            }
        }
        if let cursor = cursors[ObjectIdentifier(lu)] {
            // Unit attentions other nexuses established on this LU (LUN RESET, MODE SELECT).
            let (next, senses) = lu.events(after: cursor, for: nexus)
            cursors[ObjectIdentifier(lu)] = next
            for sense in senses { establish(sense, on: number) }
        }
        if let first = attentions[number]?.first {
            // INQUIRY and REPORT LUNS never report a unit attention; REQUEST SENSE
            // returns it as its data (SAM-5 §5.14).
            if opcode == 0x03 {
                attentions[number]?.removeFirst()
                let descriptor = cdb.count > 1 && cdb[1] & 0x01 != 0
                return .answered(
                    .ok((descriptor ? first.descriptorFormat : first.fixedFormat).allocated(Int(CDB(cdb)[4]))))
            }
            if opcode != 0x12 {
                attentions[number]?.removeFirst()
                return .answered(lu.check(first))
            }
        }
        if let refusal = aluaRefusal(cdb) { return .answered(refusal) }
        let serviceAction = cdb.count > 1 ? cdb[1] & 0x1F : 0
        if opcode == 0xA3, serviceAction == 0x0A { return .answered(reportTargetPortGroups(cdb)) }
        if opcode == 0xA4, serviceAction == 0x0A { return .setTargetPortGroups }
        return .logicalUnit(lu)
    }

    /// INQUIRY to an absent LUN: peripheral qualifier 011b, type 1Fh (SPC-4 §6.6.2).
    static func absentLUNInquiry(_ cdb: [UInt8]) -> SCSIResult {
        var d = [UInt8](repeating: 0, count: 36)
        d[0] = 0x7F
        d[2] = 0x06
        d[3] = 0x12
        d[4] = 31
        return .ok(d.allocated(Int(CDB(cdb).u16(3))))
    }
}
