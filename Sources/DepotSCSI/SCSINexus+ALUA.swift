/// Asymmetric logical unit access (SPC-4 §5.16): each target portal group
/// has one target port (relative target port identifier = group number) and
/// an access state per target. Commands through a standby or unavailable
/// group are refused with NOT READY, except the few SPC-4 §5.16.2.4 keeps open.
extension SCSINexus {
    func aluaRefusal(_ cdb: [UInt8]) -> SCSIResult? {
        let state = portalGroupStates[portalGroup] ?? 0
        let opcode = cdb[0]
        let maintenance = (opcode == 0xA3 || opcode == 0xA4) && cdb.count > 1 && cdb[1] & 0x1F == 0x0A
        switch state {
        case 0x2:
            // Standby (SPC-4 §5.16.2.4.4).
            let open: Set<UInt8> = [0x12, 0xA0, 0x03, 0x4C, 0x4D, 0x15, 0x55, 0x1A, 0x5A, 0x1C, 0x1D, 0x5E, 0x5F]
            return open.contains(opcode) || maintenance ? nil : .check(.targetPortStandby)
        case 0x3:
            // Unavailable (SPC-4 §5.16.2.4.5).
            return [0x12, 0xA0, 0x03].contains(opcode) || maintenance ? nil : .check(.targetPortUnavailable)
        default:
            return nil
        }
    }

    /// REPORT TARGET PORT GROUPS (SPC-4 §6.36): one descriptor per group the
    /// target is served on. A group of a portal the target is bound away from
    /// has no port of this LU, and listing it would offer a path whose login
    /// is refused.
    func reportTargetPortGroups(_ bytes: [UInt8]) -> SCSIResult {
        let cdb = CDB(bytes)
        let extended = (cdb[1] >> 5) == 0x01
        var body: [UInt8] = []
        for group in portalGroups {
            let state = portalGroupStates[group] ?? 0
            // PREF 0; supports active/optimized, active/non-optimized, standby, unavailable.
            body += [state & 0x0F, 0x0F, UInt8(group >> 8), UInt8(group & 0xFF), 0, 0, 0, 1]
            body += [0, 0, UInt8(group >> 8), UInt8(group & 0xFF)]
        }
        var header = [UInt8](repeating: 0, count: 4)
        header.put32(UInt32(body.count), at: 0)
        if extended { header += [0x10, 0, 0, 0] }  // FORMAT TYPE 001b, no implicit transition time
        return .ok((header + body).allocated(Int(cdb.u32(6))))
    }

    /// SET TARGET PORT GROUPS (SPC-4 §6.42), explicit ALUA: descriptors of
    /// state and group, stored as `depot target portal-group set-state` would.
    /// The unit attention it causes is for every nexus but this one (§5.16.2.6).
    func setTargetPortGroups(cdb bytes: [UInt8], dataOut: [UInt8]) async -> SCSIResult {
        let cdb = CDB(bytes)
        let length = min(dataOut.count, Int(cdb.u32(6)))
        guard length >= 4, (length - 4) % 4 == 0 else { return length == 0 ? .ok() : .check(.parameterListLengthError) }
        var states: [UInt16: UInt8] = [:]
        for at in stride(from: 4, to: length, by: 4) {
            let state = dataOut[at] & 0x0F
            let group = dataOut.u16(at: at + 2)
            // Only the four states an initiator may ask for, of groups it is reported.
            guard state <= 0x3 else { return .check(.invalidParameter(byte: at)) }
            guard portalGroups.contains(group) else { return .check(.invalidParameter(byte: at + 2)) }
            states[group] = state
        }
        do {
            try await storePortalGroups(states)
        } catch {
            return .check(SCSISense(key: SCSISense.hardwareError, asc: 0x44, ascq: 0x00))
        }
        absorbEvents(except: .asymmetricAccessStateChanged)
        return .ok()
    }

    /// Reads every LU's announced unit attentions now, dropping `sense`.
    private func absorbEvents(except sense: SCSISense) {
        for (number, lu) in luns {
            guard let cursor = cursors[ObjectIdentifier(lu)] else { continue }
            let (next, senses) = lu.events(after: cursor, for: nexus)
            cursors[ObjectIdentifier(lu)] = next
            for other in senses where other != sense { establish(other, on: number) }
        }
    }
}
