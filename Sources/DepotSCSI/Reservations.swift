/// SPC-2 RESERVE / RELEASE (6) and (10) (SPC-2 §7.21, §7.17): the LU is
/// reserved to one I_T nexus; other nexuses get RESERVATION CONFLICT for
/// every command the dispatch table does not allow. And SPC-4 persistent
/// reservations: PERSISTENT RESERVE IN / OUT (SPC-4 §6.16, §6.17).
enum Reservations {
    static let all: [SCSIOperation] = [
        .init(opcode: 0x16, name: "RESERVE(6)", cdbLength: 6, needsContext: true) { lu, cdb, _ in reserve(lu, cdb) },
        .init(opcode: 0x56, name: "RESERVE(10)", cdbLength: 10, needsContext: true) { lu, cdb, _ in reserve(lu, cdb) },
        // Releasing a reservation one does not hold is a no-op with GOOD status (SPC-2 §7.17).
        .init(opcode: 0x17, name: "RELEASE(6)", cdbLength: 6, allowedUnderReservation: true, needsContext: true) {
            lu, _, _ in
            lu.clearReservation(heldBy: LogicalUnit.context.nexus)
            return .ok()
        },
        .init(opcode: 0x57, name: "RELEASE(10)", cdbLength: 10, allowedUnderReservation: true, needsContext: true) {
            lu, _, _ in
            lu.clearReservation(heldBy: LogicalUnit.context.nexus)
            return .ok()
        },
        .init(
            opcode: 0x5E, name: "PERSISTENT RESERVE IN", cdbLength: 10, serviceActions: [0x00, 0x01, 0x02, 0x03],
            access: .unrestricted
        ) { lu, cdb, _ in
            lu.persistentReservations.report(cdb)
        },
        .init(
            opcode: 0x5F, name: "PERSISTENT RESERVE OUT", cdbLength: 10,
            serviceActions: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07], needsContext: true, access: .unrestricted
        ) { lu, cdb, data in
            let nexus = LogicalUnit.context.nexus
            let (result, attentions) = try await lu.persistentReservations.out(cdb, data, from: nexus)
            // PREEMPT AND ABORT: the preempted nexuses' tasks on the LU end before GOOD
            // (SPC-4 §5.12.11.2.5), so nothing a fenced node had in flight lands after it.
            if cdb[1] & 0x1F == 0x05, result.status == SCSIResult.good,
                let preempted = attentions.first(where: { $0.sense == .registrationsPreempted })?.to
            {
                await LogicalUnit.context.abortTasks(lu) { other in
                    other != nexus && preempted.contains { $0.matches(other) }
                }
            }
            for attention in attentions where !attention.to.isEmpty {
                let to = attention.to
                lu.announce(attention.sense) { other in
                    other != nexus && to.contains { $0.matches(other) }
                }
            }
            return result
        },
    ]

    /// RESERVE (SPC-2 §7.21): the LU is reserved to the calling nexus, unless
    /// another nexus holds it (SPC-2) or a persistent reservation (SPC-4 §5.12.3).
    static func reserve(_ lu: LogicalUnit, _ cdb: CDB) -> SCSIResult {
        // Third-party and extent reservations are not supported.
        if cdb[1] & 0x13 != 0 { return .check(.invalidField(byte: 1)) }
        let nexus = LogicalUnit.context.nexus
        if lu.persistentReservations.reservedByOther(than: nexus) {
            return SCSIResult(status: conflict, sense: nil, dataIn: [])
        }
        return lu.reserve(for: nexus) ? .ok() : SCSIResult(status: conflict, sense: nil, dataIn: [])
    }

    static let conflict: UInt8 = 0x18
}
