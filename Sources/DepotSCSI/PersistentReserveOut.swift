/// PERSISTENT RESERVE OUT (SPC-4 §6.17): the parameter list, and each
/// service action as a transition of `PRState` (SPC-4 §5.12.5–§5.12.11).
struct PROutRequest {
    enum Action: UInt8 {
        case register = 0, reserve, release, clear, preempt, preemptAndAbort, registerAndIgnore, registerAndMove
    }

    let action: Action
    let scope: UInt8
    let typeCode: UInt8
    let key: UInt64
    let serviceActionKey: UInt64
    let specifyInitiatorPorts: Bool
    let allTargetPorts: Bool
    let aptpl: Bool
    /// REGISTER AND MOVE: unregister the moving nexus.
    let unregister: Bool
    /// Initiator ports from TransportIDs (SPEC_I_PT, REGISTER AND MOVE), key 0.
    let ports: [PRRegistration]

    static func parse(_ cdb: CDB, _ data: [UInt8]) throws(PRFailure) -> PROutRequest {
        guard let action = Action(rawValue: cdb[1] & 0x1F) else { throw .invalidField(byte: 1, bit: 4) }
        let length = Int(cdb.u32(5))
        guard data.count >= length else { throw .parameterListLength }
        let p = CDB(Array(data.prefix(length)))
        guard length >= 24 else { throw .parameterListLength }
        var ports: [PRRegistration] = []
        if action == .registerAndMove {
            // Parameter list of REGISTER AND MOVE (SPC-4 §6.17.4, table 204).
            let idLength = Int(p.u32(20))
            guard 24 + idLength <= length, idLength >= 24 else { throw .parameterListLength }
            ports = try transportIDs(p, from: 24, length: idLength)
            guard ports.count == 1 else { throw .invalidParameter(byte: 24) }
            return PROutRequest(
                action: action, scope: cdb[2] >> 4, typeCode: cdb[2] & 0x0F, key: p.u64(0), serviceActionKey: p.u64(8),
                specifyInitiatorPorts: false, allTargetPorts: false, aptpl: p[17] & 0x01 != 0,
                unregister: p[17] & 0x02 != 0, ports: ports)
        }
        // Basic parameter list (SPC-4 §6.17.3, table 200).
        let specify = p[20] & 0x08 != 0
        if specify {
            guard action == .register else { throw .invalidParameter(byte: 20, bit: 3) }
            guard length >= 28 else { throw .parameterListLength }
            let idLength = Int(p.u32(24))
            guard 28 + idLength <= length else { throw .parameterListLength }
            ports = try transportIDs(p, from: 28, length: idLength)
        } else if length != 24 {
            throw .parameterListLength
        }
        return PROutRequest(
            action: action, scope: cdb[2] >> 4, typeCode: cdb[2] & 0x0F, key: p.u64(0), serviceActionKey: p.u64(8),
            specifyInitiatorPorts: specify, allTargetPorts: p[20] & 0x04 != 0, aptpl: p[20] & 0x01 != 0,
            unregister: false, ports: ports)
    }

    /// iSCSI TransportIDs (SPC-4 §7.6.4.6): format 00b names an initiator,
    /// 01b an initiator port ("name,i,0xISID").
    static func transportIDs(_ p: CDB, from start: Int, length: Int) throws(PRFailure) -> [PRRegistration] {
        var ports: [PRRegistration] = []
        var at = start
        while at < start + length {
            let format = p[at] >> 6
            guard p[at] & 0x0F == 0x05, format <= 1 else { throw .invalidParameter(byte: at) }
            let additional = Int(p.u16(at + 2))
            guard additional >= 20, additional % 4 == 0, at + 4 + additional <= start + length else {
                throw .invalidParameter(byte: at + 2)
            }
            let bytes = p.bytes[(at + 4)..<(at + 4 + additional)].prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self).lowercased()
            if format == 0 {
                ports.append(PRRegistration(initiator: text, isid: nil, target: nil, key: 0))
            } else {
                guard let range = text.range(of: ",i,0x") else { throw .invalidParameter(byte: at + 4) }
                ports.append(
                    PRRegistration(
                        initiator: String(text[..<range.lowerBound]), isid: String(text[range.upperBound...]),
                        target: nil, key: 0))
            }
            at += 4 + additional
        }
        return ports
    }
}

/// Why a PERSISTENT RESERVE OUT is refused: RESERVATION CONFLICT or a sense.
struct PRFailure: Error {
    let result: SCSIResult

    static let conflict = PRFailure(result: SCSIResult(status: Reservations.conflict, sense: nil, dataIn: []))
    static let parameterListLength = PRFailure(result: .check(.parameterListLengthError))
    static func invalidField(byte: Int, bit: Int? = nil) -> PRFailure {
        PRFailure(result: .check(.invalidField(byte: byte, bit: bit)))
    }
    static func invalidParameter(byte: Int, bit: Int? = nil) -> PRFailure {
        PRFailure(result: .check(.invalidParameter(byte: byte, bit: bit)))
    }
}

/// A unit attention a transition establishes for some registrants.
struct PRAttention {
    let sense: SCSISense
    let to: [PRRegistration]
}

extension PRState {
    /// Applies one service action from `nexus`; returns the unit attentions
    /// it establishes. Throws without changing anything when refused.
    mutating func apply(_ r: PROutRequest, from nexus: ITNexus) throws(PRFailure) -> [PRAttention] {
        let own = registration(of: nexus)
        switch r.action {
        case .register, .registerAndIgnore:
            return try register(r, from: nexus, own: own)
        case .registerAndMove:
            return try move(r, from: nexus, own: own)
        default:
            break
        }
        // Every other action needs a registered nexus naming its own key (SPC-4 §5.12.10).
        guard let own, own.key == r.key else { throw .conflict }
        switch r.action {
        case .reserve:
            let type = try Self.type(r)
            if let reservation {
                // Reserving again what one holds is no change; anything else conflicts (§5.12.10.2).
                guard isHolder(nexus), reservation.type == type else { throw .conflict }
                return []
            }
            reservation = PRReservation(type: type, holder: own)
            return []
        case .release:
            guard let reservation, isHolder(nexus) else { return [] }
            let type = try Self.type(r)
            // Scope or type other than the reservation's (SPC-4 §5.12.11.2.2).
            guard type == reservation.type else {
                throw PRFailure(result: .check(.invalidReleaseOfPersistentReservation))
            }
            self.reservation = nil
            // Registrants-only and all-registrants releases are told to the other registrants.
            guard type.registrantsOnly || type.allRegistrants else { return [] }
            return [PRAttention(sense: .reservationsReleased, to: registrations.filter { !$0.matches(nexus) })]
        case .clear:
            let others = registrations.filter { !$0.matches(nexus) }
            registrations = []
            reservation = nil
            generation &+= 1
            return [PRAttention(sense: .reservationsPreempted, to: others)]
        case .preempt, .preemptAndAbort:
            return try preempt(r, from: nexus, own: own)
        default:
            return []
        }
    }

    static func type(_ r: PROutRequest) throws(PRFailure) -> PRType {
        guard r.scope == 0 else { throw .invalidField(byte: 2, bit: 7) }  // only LU_SCOPE
        guard let type = PRType(rawValue: r.typeCode) else { throw .invalidField(byte: 2, bit: 3) }
        return type
    }

    /// REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4 §5.12.7).
    private mutating func register(_ r: PROutRequest, from nexus: ITNexus, own: PRRegistration?) throws(PRFailure)
        -> [PRAttention]
    {
        var attentions: [PRAttention] = []
        if let own {
            if r.action == .register, own.key != r.key { throw .conflict }
            if r.specifyInitiatorPorts { throw .invalidParameter(byte: 20, bit: 3) }
            if r.serviceActionKey == 0 {
                let released = unregister { $0 == own }
                if !released.isEmpty { attentions.append(PRAttention(sense: .reservationsReleased, to: released)) }
            } else if let i = registrations.firstIndex(of: own) {
                registrations[i].key = r.serviceActionKey
                if reservation?.holder == own { reservation?.holder = registrations[i] }
            }
        } else {
            if r.action == .register, r.key != 0 { throw .conflict }
            // Unregistering what is not registered changes nothing (SPC-4 §5.12.7).
            if r.serviceActionKey == 0 { return [] }
            var adding = [
                PRRegistration(
                    initiator: nexus.initiator, isid: nexus.isid, target: r.allTargetPorts ? nil : nexus.target,
                    key: r.serviceActionKey)
            ]
            for port in r.ports {
                let added = PRRegistration(
                    initiator: port.initiator, isid: port.isid, target: r.allTargetPorts ? nil : nexus.target,
                    key: r.serviceActionKey)
                // A port named twice, or one already registered (SPC-4 §6.17.3).
                if adding.contains(where: { $0.sameNexus(added) })
                    || registrations.contains(where: { $0.sameNexus(added) })
                {
                    throw .invalidParameter(byte: 28)
                }
                adding.append(added)
            }
            registrations += adding
        }
        aptpl = r.aptpl
        generation &+= 1
        return attentions
    }

    /// PREEMPT and PREEMPT AND ABORT (SPC-4 §5.12.11.2.4).
    private mutating func preempt(_ r: PROutRequest, from nexus: ITNexus, own: PRRegistration) throws(PRFailure)
        -> [PRAttention]
    {
        let sark = r.serviceActionKey
        var removed: [PRRegistration]
        if let reservation, reservation.type.allRegistrants {
            let type = try Self.type(r)
            if sark == 0 {
                // Every other registration goes; the preempter reserves anew.
                removed = registrations.filter { $0 != own }
                registrations = [own]
                self.reservation = PRReservation(type: type, holder: own)
            } else {
                removed = registrations.filter { $0.key == sark && $0 != own }
                registrations.removeAll { $0.key == sark && $0 != own }
            }
        } else if let reservation, let holder = reservation.holder, holder.key == sark {
            let type = try Self.type(r)
            removed = registrations.filter { $0.key == sark && $0 != own }
            registrations.removeAll { $0.key == sark && $0 != own }
            self.reservation = PRReservation(type: type, holder: own)
        } else {
            // No reservation, or one whose holder is not named: registrations only.
            guard sark != 0 else { throw .invalidParameter(byte: 8) }
            removed = registrations.filter { $0.key == sark }
            guard !removed.isEmpty else { throw .conflict }
            _ = unregister { $0.key == sark }
        }
        generation &+= 1
        return [PRAttention(sense: .registrationsPreempted, to: removed)]
    }

    /// REGISTER AND MOVE (SPC-4 §5.12.8): the holder hands its reservation to
    /// another initiator port on the same target port.
    private mutating func move(_ r: PROutRequest, from nexus: ITNexus, own: PRRegistration?) throws(PRFailure)
        -> [PRAttention]
    {
        guard let own, own.key == r.key else { throw .conflict }
        guard let reservation, !reservation.type.allRegistrants, reservation.holder == own else { throw .conflict }
        guard r.serviceActionKey != 0 else { throw .invalidParameter(byte: 8) }
        let port = r.ports[0]
        var destination = PRRegistration(
            initiator: port.initiator, isid: port.isid, target: nexus.target, key: r.serviceActionKey)
        guard !destination.matches(nexus) else { throw .invalidParameter(byte: 24) }
        if let i = registrations.firstIndex(where: { $0.sameNexus(destination) }) {
            registrations[i].key = r.serviceActionKey
            destination = registrations[i]
        } else {
            registrations.append(destination)
        }
        self.reservation = PRReservation(type: reservation.type, holder: destination)
        if r.unregister { registrations.removeAll { $0 == own } }
        aptpl = r.aptpl
        generation &+= 1
        return []
    }
}
