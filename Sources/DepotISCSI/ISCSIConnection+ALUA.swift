import DepotSCSI

/// Asymmetric logical unit access (SPC-4 §5.16): every portal of the daemon
/// is a target portal group of its own, with one target port (relative
/// target port identifier = group number). The access state is per target
/// and group; commands through a standby or unavailable group are refused
/// with NOT READY, except the few SPC-4 §5.16.2.4 keeps open.
extension ISCSIConnection {
    func aluaRefusal(_ cdb: [UInt8]) -> SCSIResult? {
        let state = portalGroupStates[portalGroup] ?? 0
        let opcode = cdb[0]
        let maintenance = (opcode == 0xA3 || opcode == 0xA4) && cdb[1] & 0x1F == 0x0A
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

    /// REPORT TARGET PORT GROUPS (SPC-4 §6.36): one descriptor per group.
    func reportTargetPortGroups(_ cdb: [UInt8]) -> SCSIResult {
        let extended = (cdb[1] >> 5) == 0x01
        let allocation = Int(cdb[6]) << 24 | Int(cdb[7]) << 16 | Int(cdb[8]) << 8 | Int(cdb[9])
        var body: [UInt8] = []
        for index in directory.portals.indices {
            let group = UInt16(index + 1)
            let state = portalGroupStates[group] ?? 0
            // PREF 0; supports active/optimized, active/non-optimized, standby, unavailable.
            body += [state & 0x0F, 0x0F, UInt8(group >> 8), UInt8(group & 0xFF), 0, 0, 0, 1]
            body += [0, 0, UInt8(group >> 8), UInt8(group & 0xFF)]
        }
        let length = UInt32(body.count)
        var header: [UInt8] = [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        if extended { header += [0x10, 0, 0, 0] }  // FORMAT TYPE 001b, no implicit transition time
        let d = header + body
        return .ok(d.count > allocation ? Array(d.prefix(allocation)) : d)
    }

    /// SET TARGET PORT GROUPS (SPC-4 §6.42), explicit ALUA: descriptors of
    /// state and group; stored as the CLI's `portal-group set-state` would.
    func setTargetPortGroups(cdb: [UInt8], dataOut: [UInt8]) async -> SCSIResult {
        guard let targetName else { return .check(.logicalUnitNotSupported) }
        let length = min(dataOut.count, Int(cdb[6]) << 24 | Int(cdb[7]) << 16 | Int(cdb[8]) << 8 | Int(cdb[9]))
        guard length >= 4, (length - 4) % 4 == 0 else { return length == 0 ? .ok() : .check(.parameterListLengthError) }
        let groups = directory.portals.count
        var states: [UInt16: UInt8] = [:]
        for at in stride(from: 4, to: length, by: 4) {
            let state = dataOut[at] & 0x0F
            let group = UInt16(dataOut[at + 2]) << 8 | UInt16(dataOut[at + 3])
            // Only the four states an initiator may ask for, of groups that exist.
            guard state <= 0x3 else { return .check(.invalidParameter(byte: at)) }
            guard group >= 1, Int(group) <= groups else { return .check(.invalidParameter(byte: at + 2)) }
            states[group] = state
        }
        do {
            try await directory.setPortalGroups(targetName, states)
            // The unit attention is for every nexus but this one (SPC-4 §5.16.2.6).
            confined {
                let luns = lunChanges()
                for (number, lu) in luns {
                    guard let cursor = eventCursors[ObjectIdentifier(lu)] else { continue }
                    let (next, senses) = lu.events(after: cursor, for: nexus)
                    eventCursors[ObjectIdentifier(lu)] = next
                    for sense in senses where sense != .asymmetricAccessStateChanged && !(unitAttentions[number]?.contains(sense) ?? false) {
                        unitAttentions[number, default: []].append(sense)
                    }
                }
            }
            return .ok()
        } catch {
            logger.error("SET TARGET PORT GROUPS could not be stored", metadata: ["error": "\(error)"])
            return .check(SCSISense(key: SCSISense.hardwareError, asc: 0x44, ascq: 0x00))
        }
    }
}
