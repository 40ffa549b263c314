import DepotSCSI
import NIOCore

extension ISCSIConnection {
    /// One PDU of the full feature phase, in arrival order. SCSI commands and
    /// task management run as tasks of `group`; the rest is answered here.
    func fullFeature(_ pdu: ISCSIPDU, group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        guard pdu.opcode != .dataOut, !pdu.immediate else { return try await deliver(pdu, group: &group) }
        let cmdSN = pdu.u32(24)
        let (inWindow, inOrder) = lock.withLock { (inWindowLocked(cmdSN), cmdSN == expCmdSN) }
        // A command outside [ExpCmdSN, MaxCmdSN] is silently ignored (RFC 7143 §3.2.2.1).
        guard inWindow else {
            logger.debug("command outside the CmdSN window ignored", metadata: ["cmdSN": "\(cmdSN)"])
            return
        }
        // Non-immediate commands are delivered in CmdSN order (RFC 7143 §3.2.2.1): one
        // that arrives ahead of a gap waits until the gap is filled.
        guard inOrder else {
            heldForOrder[cmdSN] = pdu
            return
        }
        try await deliver(pdu, group: &group)
        while let next = lock.withLock({ heldForOrder.removeValue(forKey: expCmdSN) }) {
            try await deliver(next, group: &group)
        }
    }

    private func deliver(_ pdu: ISCSIPDU, group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        switch pdu.opcode {
        case .scsiCommand:
            let task = ISCSITask(command: pdu, lun: Self.lunNumber(pdu.lun), eventLoop: channel.eventLoop)
            let duplicate = lock.withLock { () -> Bool in
                acceptLocked(pdu)
                // An Initiator Task Tag names one task at a time (RFC 7143 §11.2.1.8).
                guard tasks[task.tag] == nil else { return true }
                tasks[task.tag] = task
                if task.windowed { commandsInFlight += 1 }
                return false
            }
            if duplicate {
                try await reject(pdu, reason: 0x04)
                return
            }
            group.addTask { try await self.run(task) }
        case .dataOut:
            // Data-Out goes to the task that solicited it; none is a protocol error (RFC 7143 §11.7).
            let routed = lock.withLock { () -> Bool in
                guard let task = tasks[pdu.initiatorTaskTag], let sink = task.dataOutSink else { return false }
                sink.yield(pdu)
                return true
            }
            if !routed { try await reject(pdu, reason: 0x04) }
        case .nopOut:
            accept(pdu)
            // A NOP-Out with a real ITT is a ping: answer with NOP-In, echoing data (RFC 7143 §11.18).
            // ITT 0xffffffff is the answer to our ping (or a bare CmdSN update): nothing to send.
            guard pdu.initiatorTaskTag != 0xFFFF_FFFF else { return }
            var r = ISCSIPDU(opcode: .nopIn)
            r.flags = 0x80
            r.lun = pdu.lun
            r.initiatorTaskTag = pdu.initiatorTaskTag
            r.put32(0xFFFF_FFFF, 20)
            r.data = pdu.data
            try await send(r)
        case .textRequest:
            accept(pdu)
            try await text(pdu)
        case .taskManagementRequest:
            let affected = lock.withLock { () -> TaskManagement.Outcome in
                defer { acceptLocked(pdu) }
                return TaskManagement.select(pdu, tasks: tasks, expCmdSN: expCmdSN)
            }
            group.addTask { try await self.manage(pdu, affected) }
        case .logoutRequest:
            accept(pdu)
            // Logout closes the session (RFC 7143 §11.14): commands still waiting for
            // data are aborted, the rest finish and answer before the Logout Response.
            let running = lock.withLock { Array(tasks.values) }
            for task in running where task.dataOutSink != nil { abort(task) }
            for task in running { try? await task.ended.futureResult.get() }
            var r = ISCSIPDU(opcode: .logoutResponse)
            r.flags = 0x80
            r.initiatorTaskTag = pdu.initiatorTaskTag
            try await send(r)
            logger.info("session logged out")
            throw Closing.loggedOut
        case .loginRequest:
            try await reject(pdu, reason: 0x04)
        default:
            try await reject(pdu, reason: 0x05)
        }
    }

    func logicalUnitNumbered(_ number: UInt16) -> LogicalUnit? {
        targetName.flatMap { directory.target($0) }?.luns[number]
    }

    /// SendTargets (RFC 7143 §12.3; Appendix C): the targets this initiator may
    /// log into, each with every portal.
    func text(_ pdu: ISCSIPDU) async throws {
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
        try await send(r)
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
