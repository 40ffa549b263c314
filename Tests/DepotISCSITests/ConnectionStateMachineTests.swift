import Testing

@testable import DepotISCSI

/// The connection's state machine driven with PDUs alone — no socket, no
/// task: every phase transition, every refusal, the command window and the
/// StatSN sequencer (RFC 7143 §4.2.2, §6, §11.14).
@Suite struct ConnectionStateMachineTests {
    static func login(csg: UInt8, nsg: UInt8, transit: Bool = true, cmdSN: UInt32 = 10, expStatSN: UInt32 = 500)
        -> ISCSIFrame
    {
        var pdu = ISCSIFrame(opcode: .loginRequest)
        pdu.bhs[0] |= 0x40
        pdu.flags = (transit ? 0x80 : 0) | csg << 2 | nsg
        pdu.put32(cmdSN, 24)
        pdu.put32(expStatSN, 28)
        return pdu
    }

    static func command(cmdSN: UInt32, tag: UInt32 = 1, immediate: Bool = false) -> ISCSIFrame {
        var pdu = ISCSIFrame(opcode: .scsiCommand)
        if immediate { pdu.bhs[0] |= 0x40 }
        pdu.flags = 0x80
        pdu.initiatorTaskTag = tag
        pdu.put32(cmdSN, 24)
        return pdu
    }

    static func pdu(_ opcode: ISCSIFrame.Opcode, cmdSN: UInt32 = 0, tag: UInt32 = 1, immediate: Bool = true)
        -> ISCSIFrame
    {
        var pdu = ISCSIFrame(opcode: opcode)
        if immediate { pdu.bhs[0] |= 0x40 }
        pdu.flags = 0x80
        pdu.initiatorTaskTag = tag
        pdu.put32(cmdSN, 24)
        return pdu
    }

    /// Delivered PDUs' CmdSNs, or nil when the action is not a delivery.
    static func delivered(_ action: ConnectionStateMachine.Action) -> [UInt32]? {
        if case .deliver(let list) = action { return list.map { $0.pdu.u32(24) } }
        return nil
    }

    static func isNone(_ action: ConnectionStateMachine.Action) -> Bool {
        if case .none = action { return true }
        return false
    }

    /// A machine in full feature phase, window from CmdSN 10, StatSN from 500.
    static func fullFeature(depth: Int = 8) throws -> ConnectionStateMachine {
        var m = ConnectionStateMachine(queueDepth: depth)
        _ = try m.receive(login(csg: 0, nsg: 1))
        m.loginStepEnded(.operational)
        _ = try m.receive(login(csg: 1, nsg: 3))
        m.loginStepEnded(.fullFeature(nexus: "iqn.i,i,0x01|iqn.t"))
        return m
    }

    @Test func loginGoesThroughItsStagesToFullFeature() throws {
        var m = ConnectionStateMachine(queueDepth: 8)
        #expect(!m.isFullFeature && !m.isNegotiating && m.nexus == nil)
        // The first Login Request sets StatSN and the window (RFC 7143 §11.12).
        guard case .negotiate = try m.receive(Self.login(csg: 0, nsg: 0, transit: false, cmdSN: 77, expStatSN: 9000))
        else {
            Issue.record("a Login Request is negotiated")
            return
        }
        #expect(m.isNegotiating && m.statSN == 9000 && m.expCmdSN == 77)
        m.loginStepEnded(.stay)
        #expect(!m.isNegotiating && !m.isFullFeature)
        _ = try m.receive(Self.login(csg: 0, nsg: 1, cmdSN: 77))
        m.loginStepEnded(.operational)
        _ = try m.receive(Self.login(csg: 1, nsg: 3, cmdSN: 77))
        #expect(m.isNegotiating && !m.isFullFeature, "still negotiating: nothing may be decoded yet")
        m.loginStepEnded(.fullFeature(nexus: "n"))
        #expect(m.isFullFeature && m.nexus == "n" && !m.isNegotiating)
        // The login window: the first full feature command is delivered, for the named nexus.
        #expect(Self.delivered(try m.receive(Self.command(cmdSN: 77))) == [77])
        #expect(m.nexus == "n" && m.expCmdSN == 78)
    }

    @Test func anythingButALoginRequestBeforeFullFeatureEndsTheConnection() throws {
        var first = ConnectionStateMachine(queueDepth: 8)
        #expect(throws: ConnectionStateMachine.Violation.self) { try first.receive(Self.command(cmdSN: 1)) }
        for opcode: ISCSIFrame.Opcode in [
            .scsiCommand, .nopOut, .textRequest, .dataOut, .logoutRequest, .taskManagementRequest, .snackRequest,
        ] {
            var m = ConnectionStateMachine(queueDepth: 8)
            _ = try m.receive(Self.login(csg: 0, nsg: 1))
            m.loginStepEnded(.operational)
            #expect(throws: ConnectionStateMachine.Violation.self, "\(opcode) during login") {
                try m.receive(Self.pdu(opcode))
            }
        }
    }

    @Test func aLoginStepThatEndsAfterTheConnectionClosedChangesNothing() throws {
        var m = ConnectionStateMachine(queueDepth: 8)
        _ = try m.receive(Self.login(csg: 0, nsg: 3))
        m.close()  // the peer went away while the step was negotiated
        m.loginStepEnded(.fullFeature(nexus: "n"))
        #expect(m.isClosed && !m.isFullFeature && m.nexus == nil)
    }

    @Test func aRefusedLoginClosesAndIgnoresTheRest() throws {
        var m = ConnectionStateMachine(queueDepth: 8)
        _ = try m.receive(Self.login(csg: 0, nsg: 1))
        m.loginStepEnded(.refused)
        #expect(m.isClosed && !m.isFullFeature)
        #expect(Self.isNone(try m.receive(Self.command(cmdSN: 10))))
        #expect(Self.isNone(try m.receive(Self.login(csg: 0, nsg: 1))))
    }

    @Test func commandsAreDeliveredInCmdSNOrderInsideTheWindow() throws {
        var m = try Self.fullFeature(depth: 8)
        #expect(Self.delivered(try m.receive(Self.command(cmdSN: 10))) == [10])
        // Ahead of a gap: held, then delivered in order when it fills.
        #expect(Self.isNone(try m.receive(Self.command(cmdSN: 13))))
        #expect(Self.isNone(try m.receive(Self.command(cmdSN: 12))))
        #expect(Self.isNone(try m.receive(Self.command(cmdSN: 12, tag: 9))), "a second copy of a held CmdSN is ignored")
        guard case .deliver(let list) = try m.receive(Self.command(cmdSN: 11)) else {
            Issue.record("the gap filled")
            return
        }
        #expect(list.map { $0.pdu.u32(24) } == [11, 12, 13])
        #expect(list.map(\.expCmdSN) == [11, 12, 13], "each with ExpCmdSN before it was accepted")
        #expect(m.expCmdSN == 14)
        // Outside [ExpCmdSN, MaxCmdSN]: silently ignored (§4.2.2.1) — old, and too far ahead.
        #expect(Self.isNone(try m.receive(Self.command(cmdSN: 13))))
        #expect(Self.isNone(try m.receive(Self.command(cmdSN: 14 + 8))))
        #expect(m.expCmdSN == 14)
        // Immediate commands, Data-Out and SNACK are delivered at once and do not advance ExpCmdSN.
        #expect(Self.delivered(try m.receive(Self.command(cmdSN: 14, immediate: true))) == [14])
        #expect(Self.delivered(try m.receive(Self.pdu(.dataOut, cmdSN: 999, immediate: false))) != nil)
        #expect(Self.delivered(try m.receive(Self.pdu(.snackRequest, cmdSN: 999, immediate: false))) != nil)
        #expect(m.expCmdSN == 14)
    }

    @Test func runningTasksCloseTheWindowAndEndingOnesReopenIt() throws {
        var m = try Self.fullFeature(depth: 4)
        #expect(m.maxCmdSN == 13)
        for sn: UInt32 in 10..<14 {
            #expect(Self.delivered(try m.receive(Self.command(cmdSN: sn))) == [sn])
            m.windowedTaskStarted()
        }
        // Four running, depth four: MaxCmdSN = ExpCmdSN − 1, the window is empty.
        #expect(m.expCmdSN == 14 && m.maxCmdSN == 13)
        #expect(Self.isNone(try m.receive(Self.command(cmdSN: 14))), "no room")
        #expect(!m.admitsFastLane(cmdSN: 14))
        m.windowedTaskEnded()
        #expect(m.maxCmdSN == 14 && m.admitsFastLane(cmdSN: 14) && !m.admitsFastLane(cmdSN: 15))
        m.acceptFastLane(cmdSN: 14)
        #expect(m.expCmdSN == 15)
    }

    @Test func cmdSNWrapsAround() throws {
        var m = ConnectionStateMachine(queueDepth: 4)
        _ = try m.receive(Self.login(csg: 0, nsg: 3, cmdSN: 0xFFFF_FFFE))
        m.loginStepEnded(.fullFeature(nexus: "n"))
        #expect(Self.isNone(try m.receive(Self.command(cmdSN: 0))), "0 is ahead of FFFFFFFEh: held")
        #expect(Self.delivered(try m.receive(Self.command(cmdSN: 0xFFFF_FFFF))) == nil, "held too")
        #expect(Self.delivered(try m.receive(Self.command(cmdSN: 0xFFFF_FFFE))) == [0xFFFF_FFFE, 0xFFFF_FFFF, 0])
        #expect(m.expCmdSN == 1)
    }

    @Test func statSNAdvancesOnlyForStatus() throws {
        var m = try Self.fullFeature(depth: 8)
        var pdu = ISCSIFrame(opcode: .scsiResponse)
        m.stamp(&pdu, .status)
        #expect(pdu.u32(24) == 500 && pdu.u32(28) == 10 && pdu.u32(32) == 17)
        var r2t = ISCSIFrame(opcode: .r2t)
        m.stamp(&r2t, .peek)
        #expect(r2t.u32(24) == 501, "R2T carries the next StatSN without taking it")
        var data = ISCSIFrame(opcode: .dataIn)
        data.put32(0xABCD, 24)
        m.stamp(&data, .window)
        #expect(data.u32(24) == 0xABCD, "Data-In without status has no StatSN")
        #expect(m.stampStatus().statSN == 501 && m.statSN == 502)
    }

    @Test func afterALogoutRequestNewRequestsAreRejected() throws {
        var m = try Self.fullFeature(depth: 8)
        #expect(Self.delivered(try m.receive(Self.pdu(.logoutRequest, cmdSN: 10))) != nil)
        #expect(!m.isFullFeature && m.nexus != nil, "logging out: the nexus stays until the response")
        for late in [Self.command(cmdSN: 10), Self.pdu(.nopOut, tag: 5), Self.pdu(.textRequest), Self.pdu(.dataOut)] {
            guard case .reject(_, let reason) = try m.receive(late) else {
                Issue.record("\(late.opcode.map { "\($0)" } ?? "?") after logout is rejected")
                continue
            }
            #expect(reason == 0x04)
        }
        #expect(Self.isNone(try m.receive(Self.pdu(.nopOut, tag: 0xFFFF_FFFF))), "an answer to a ping is ignored")
        #expect(!m.admitsFastLane(cmdSN: 11))
        m.close()
        #expect(m.isClosed && m.nexus == nil)
    }
}
