/// SPC-2 RESERVE / RELEASE (6) and (10) (SPC-2 §7.21, §7.17): the LU is
/// reserved to one I_T nexus; other nexuses get RESERVATION CONFLICT for
/// every command the dispatch table does not allow.
enum Reservations {
    static let all: [SCSIOperation] = [
        .init(opcode: 0x16, name: "RESERVE(6)", cdbLength: 6) { _, _, _ in .ok() },
        .init(opcode: 0x56, name: "RESERVE(10)", cdbLength: 10) { _, _, _ in .ok() },
        .init(opcode: 0x17, name: "RELEASE(6)", cdbLength: 6, allowedUnderReservation: true) { _, _, _ in .ok() },
        .init(opcode: 0x57, name: "RELEASE(10)", cdbLength: 10, allowedUnderReservation: true) { _, _, _ in .ok() },
    ]

    static let conflict: UInt8 = 0x18
}
