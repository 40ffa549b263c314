import DepotSCSI
import NIOCore

extension ISCSIConnection {
    func fullFeature(_ pdu: ISCSIPDU, inbound: inout Inbound, outbound: Outbound) async throws {
        // A command outside [ExpCmdSN, MaxCmdSN] is silently ignored (RFC 7143 §3.2.2.1).
        if pdu.opcode != .dataOut, !pdu.immediate {
            let offset = Int32(bitPattern: pdu.u32(24) &- expCmdSN)
            if offset < 0 || offset > Int32(bitPattern: maxCmdSN &- expCmdSN) {
                logger.debug("command outside the CmdSN window ignored", metadata: ["cmdSN": "\(pdu.u32(24))", "expCmdSN": "\(expCmdSN)"])
                return
            }
        }
        switch pdu.opcode {
        case .scsiCommand:
            accept(pdu)
            directory.sessions.update(sessionID) { $0.commandsInFlight += 1 }
            defer { directory.sessions.update(sessionID) { $0.commandsInFlight -= 1 } }
            try await scsiCommand(pdu, inbound: &inbound, outbound: outbound)
        case .nopOut:
            accept(pdu)
            // A NOP-Out with a real ITT is a ping: answer with NOP-In, echoing data (RFC 7143 §11.18).
            guard pdu.initiatorTaskTag != 0xFFFF_FFFF else { return }
            var r = ISCSIPDU(opcode: .nopIn)
            r.flags = 0x80
            r.lun = pdu.lun
            r.initiatorTaskTag = pdu.initiatorTaskTag
            r.put32(0xFFFF_FFFF, 20)
            r.data = pdu.data
            stamp(&r, status: true)
            try await outbound.write(r)
        case .textRequest:
            accept(pdu)
            try await text(pdu, outbound: outbound)
        case .taskManagementRequest:
            accept(pdu)
            var r = ISCSIPDU(opcode: .taskManagementResponse)
            r.flags = 0x80
            r.initiatorTaskTag = pdu.initiatorTaskTag
            // Commands run to completion in order, so by now no referenced task is
            // still running: the abort and reset functions are complete (§11.6.1).
            // Function codes (RFC 7143 §11.5.1): 1 ABORT TASK, 2 ABORT TASK SET, 4 CLEAR TASK SET,
            // 5 LOGICAL UNIT RESET, 6 TARGET WARM RESET, 7 TARGET COLD RESET.
            switch pdu.flags & 0x7F {
            case 1, 2, 4: r.bhs[2] = 0x00
            case 5:
                // LUN RESET clears the LU's reservation (SPC-2 §5.5.3).
                if let number = Self.lunNumber(pdu.lun) { logicalUnitNumbered(number)?.clearReservation() }
                r.bhs[2] = 0x00
            case 6, 7:
                for lu in targetName.flatMap({ directory.target($0) })?.luns.values.map({ $0 }) ?? [] { lu.clearReservation() }
                r.bhs[2] = 0x00
            default: r.bhs[2] = 0x05  // not supported
            }
            stamp(&r, status: true)
            try await outbound.write(r)
        case .logoutRequest:
            accept(pdu)
            var r = ISCSIPDU(opcode: .logoutResponse)
            r.flags = 0x80
            r.initiatorTaskTag = pdu.initiatorTaskTag
            stamp(&r, status: true)
            try await outbound.write(r)
            logger.info("session logged out")
            throw Closing.loggedOut
        case .dataOut:
            // Data-Out for no outstanding R2T (RFC 7143 §11.7): protocol error.
            try await reject(pdu, reason: 0x04, outbound: outbound)
        case .loginRequest:
            try await reject(pdu, reason: 0x04, outbound: outbound)
        default:
            try await reject(pdu, reason: 0x05, outbound: outbound)
        }
    }

    func logicalUnitNumbered(_ number: UInt16) -> LogicalUnit? {
        targetName.flatMap { directory.target($0) }?.luns[number]
    }

    /// SendTargets (RFC 7143 §12.3; Appendix C): the targets this initiator may
    /// log into, each with every portal.
    func text(_ pdu: ISCSIPDU, outbound: Outbound) async throws {
        var answers: [(String, String)] = []
        for (key, value) in TextKeys.parse(pdu.data) where key == "SendTargets" {
            let wanted = value == "All" ? nil : value.lowercased()
            for target in directory.all where target.admits(initiatorName) {
                if let wanted, wanted != target.iqn { continue }
                if value.isEmpty, !discovery, target.iqn != targetName { continue }
                answers.append(("TargetName", target.iqn))
                for portal in portals { answers.append(("TargetAddress", "\(portal),1")) }
            }
        }
        var r = ISCSIPDU(opcode: .textResponse)
        r.flags = 0x80
        r.initiatorTaskTag = pdu.initiatorTaskTag
        r.put32(0xFFFF_FFFF, 20)
        r.data = TextKeys.encode(answers)
        stamp(&r, status: true)
        try await outbound.write(r)
    }

    /// LUN field (SAM-5 §4.7): peripheral (00b) and flat (01b) addressing.
    static func lunNumber(_ bytes: [UInt8]) -> UInt16? {
        switch bytes[0] >> 6 {
        case 0: return bytes[0] == 0 ? UInt16(bytes[1]) : nil
        case 1: return UInt16(bytes[0] & 0x3F) << 8 | UInt16(bytes[1])
        default: return nil
        }
    }

    static func lunField(_ lun: UInt16) -> [UInt8] {
        lun < 256 ? [0, UInt8(lun), 0, 0, 0, 0, 0, 0] : [0x40 | UInt8(lun >> 8), UInt8(truncatingIfNeeded: lun), 0, 0, 0, 0, 0, 0]
    }
}
