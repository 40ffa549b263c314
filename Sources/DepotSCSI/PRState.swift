/// Persistent reservation state of one logical unit (SPC-4 §5.12) and the
/// transitions PERSISTENT RESERVE OUT makes on it. A value type: the LU
/// applies a transition to a copy and keeps it only once it is stored.
public struct PRState: Codable, Sendable, Equatable {
    /// PRgeneration (SPC-4 §6.16.2): bumped by every REGISTER, REGISTER AND
    /// IGNORE EXISTING KEY, CLEAR, PREEMPT, PREEMPT AND ABORT and REGISTER AND MOVE.
    public var generation: UInt32 = 0
    public var registrations: [PRRegistration] = []
    public var reservation: PRReservation?
    /// Activate Persist Through Power Loss, as the last REGISTER set it (SPC-4 §5.12.5).
    public var aptpl = false

    public init() {}

    public var isEmpty: Bool { registrations.isEmpty && reservation == nil }

    func registration(of nexus: ITNexus) -> PRRegistration? {
        registrations.first { $0.matches(nexus) }
    }

    /// Whether `nexus` holds the reservation: the nexus that reserved, or,
    /// for the all-registrants types, every registered nexus (SPC-4 §5.12.10).
    func isHolder(_ nexus: ITNexus) -> Bool {
        guard let reservation, let own = registration(of: nexus) else { return false }
        return reservation.type.allRegistrants || reservation.holder == own
    }

    /// Whether a command of class `access` from `nexus` meets RESERVATION
    /// CONFLICT (SPC-4 §5.12.1, table 60; SBC-3 table 13).
    func conflicts(_ access: PRAccess, from nexus: ITNexus) -> Bool {
        guard let reservation, access != .unrestricted, !isHolder(nexus) else { return false }
        let registered = registration(of: nexus) != nil
        switch reservation.type {
        case .writeExclusive: return access == .write
        case .exclusiveAccess: return true
        case .writeExclusiveRegistrantsOnly, .writeExclusiveAllRegistrants: return !registered && access == .write
        case .exclusiveAccessRegistrantsOnly, .exclusiveAccessAllRegistrants: return !registered
        }
    }

    /// Removes registrations; a holder's reservation goes with its
    /// registration, an all-registrants one with the last registration
    /// (SPC-4 §5.12.11.2). Returns the registrants to tell RESERVATIONS
    /// RELEASED, if a registrants-only reservation was released.
    mutating func unregister(where remove: (PRRegistration) -> Bool) -> [PRRegistration] {
        let gone = registrations.filter(remove)
        registrations.removeAll(where: remove)
        guard let reservation else { return [] }
        if reservation.type.allRegistrants {
            if registrations.isEmpty { self.reservation = nil }
            return []
        }
        guard let holder = reservation.holder, gone.contains(holder) else { return [] }
        self.reservation = nil
        return reservation.type.registrantsOnly ? registrations : []
    }
}

/// One registration: an I_T nexus (or, from a TransportID without an ISID or
/// with ALL_TG_PT, a family of them) and its reservation key.
public struct PRRegistration: Codable, Sendable, Equatable {
    /// Lower-case iSCSI name of the initiator.
    public var initiator: String
    /// The initiator port's ISID in hex; nil: every port of that initiator.
    public var isid: String?
    /// The target port's name; nil: every target port (ALL_TG_PT).
    public var target: String?
    public var key: UInt64

    func matches(_ nexus: ITNexus) -> Bool {
        initiator == nexus.initiator && (isid == nil || isid == nexus.isid) && (target == nil || target == nexus.target)
    }

    func sameNexus(_ other: PRRegistration) -> Bool {
        initiator == other.initiator && isid == other.isid && target == other.target
    }
}

public struct PRReservation: Codable, Sendable, Equatable {
    public var type: PRType
    /// The registration that reserved (unused by the all-registrants types).
    public var holder: PRRegistration?
}

/// PERSISTENT RESERVATION TYPE codes (SPC-4 §6.16.4, table 191).
public enum PRType: UInt8, Codable, Sendable {
    case writeExclusive = 1
    case exclusiveAccess = 3
    case writeExclusiveRegistrantsOnly = 5
    case exclusiveAccessRegistrantsOnly = 6
    case writeExclusiveAllRegistrants = 7
    case exclusiveAccessAllRegistrants = 8

    var allRegistrants: Bool { self == .writeExclusiveAllRegistrants || self == .exclusiveAccessAllRegistrants }
    var registrantsOnly: Bool { self == .writeExclusiveRegistrantsOnly || self == .exclusiveAccessRegistrantsOnly }
}

/// How a command fares under a persistent reservation it does not hold
/// (SPC-4 table 60 and SBC-3 table 13): never in conflict, in conflict only
/// under the exclusive-access types, or under every type.
public enum PRAccess: Sendable {
    case unrestricted
    case read
    case write
}

extension ITNexus {
    var registration: PRRegistration { PRRegistration(initiator: initiator, isid: isid, target: target, key: 0) }
}
