import DepotInitiator
import DepotSCSI
import Testing

@testable import DepotISCSI

/// The target's `ConnectionStateMachine` against the test initiator's
/// `InitiatorSession`, PDUs alone (as swift-nio-ssh tests its two sides):
/// login through both stages, then thousands of commands sent as the window
/// allows and arriving shuffled, completed in random order, with R2Ts and
/// NOP-In pings among the answers. Each side checks the other: the target
/// delivers every command once, in CmdSN order, never past MaxCmdSN; the
/// initiator sees StatSN strictly in order and a window that never goes back.
@Suite struct MachinesAgainstEachOtherTests {
    /// Logs both machines in; returns them in full feature phase.
    static func loggedIn(depth: Int, cmdSN: UInt32) throws -> (ConnectionStateMachine, InitiatorSession) {
        var target = ConnectionStateMachine(queueDepth: depth)
        var initiator = InitiatorSession(cmdSN: cmdSN)
        for (next, outcome) in [
            (UInt8(1), ConnectionStateMachine.LoginOutcome.operational), (3, .fullFeature(nexus: "iqn.i,i,0x01|iqn.t")),
        ] {
            let request = initiator.loginRequest(to: next, keys: [("InitiatorName", "iqn.i")])
            guard case .negotiate(let frame) = try target.receive(request.frame) else {
                throw Failure("login not negotiated")
            }
            var answer = LoginResponse(answering: LoginRequest(frame), transit: true, nextStage: next).frame
            target.stamp(&answer, .status)
            target.loginStepEnded(outcome)
            _ = try initiator.receive(answer)
        }
        return (target, initiator)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test(arguments: [UInt32(1), 0xFFFF_FF00])  // the second wraps CmdSN during the run
    func thousandsOfCommandsFlowBetweenTheTwoMachines(startCmdSN: UInt32) throws {
        var (target, initiator) = try Self.loggedIn(depth: 16, cmdSN: startCmdSN)
        #expect(target.isFullFeature && initiator.phase == .fullFeature)
        var rng = SeededRandom(seed: UInt64(startCmdSN))
        var delivered: [UInt32] = []
        var running: [UInt32] = []  // tags of delivered, unanswered commands
        var sent = 0
        while sent < 3000 || !running.isEmpty {
            // The initiator sends what its window allows, and the network shuffles it.
            var batch: [SCSICommand] = []
            while sent < 3000, initiator.windowRoom > 0, batch.count < 8 {
                batch.append(initiator.command([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], read: 512))
                sent += 1
            }
            batch.shuffle(using: &rng)
            for command in batch {
                let action = try target.receive(command.frame)
                if case .deliver(let list) = action {
                    for d in list {
                        delivered.append(d.pdu.cmdSN)
                        target.windowedTaskStarted()
                        running.append(d.pdu.initiatorTaskTag)
                    }
                }
            }
            // Some commands end, in any order; answers leave in stamping order.
            running.shuffle(using: &rng)
            let ending = running.prefix(Int.random(in: 0...running.count, using: &rng))
            var wire: [ISCSIFrame] = []
            for tag in ending {
                if Bool.random(using: &rng) {
                    var r2t = R2T()
                    r2t.tag = tag
                    var frame = r2t.frame
                    target.stamp(&frame, .peek)
                    wire.append(frame)
                }
                target.windowedTaskEnded()
                var response = SCSIResponse()
                response.tag = tag
                var frame = response.frame
                target.stamp(&frame, .status)
                wire.append(frame)
            }
            if Int.random(in: 0..<10, using: &rng) == 0 {
                var ping = NOPIn()
                ping.transferTag = 7
                var frame = ping.frame
                target.stamp(&frame, .peek)
                wire.append(frame)
            }
            running.removeFirst(ending.count)
            for frame in wire { _ = try initiator.receive(frame) }
            #expect(running.count <= 16, "never more than the window's depth running")
        }
        #expect(delivered.count == 3000)
        let expected = (0..<3000).map { startCmdSN &+ UInt32($0) }
        #expect(delivered == expected, "every command once, in CmdSN order")
        #expect(target.expCmdSN == initiator.cmdSN && initiator.expCmdSN == target.expCmdSN)
    }

    @Test func eachSideRefusesTheOthersViolations() throws {
        var (target, initiator) = try Self.loggedIn(depth: 8, cmdSN: 100)
        // Answers stamped in one order and seen in another: the initiator's machine says so.
        var first = SCSIResponse().frame
        var second = SCSIResponse().frame
        target.stamp(&first, .status)
        target.stamp(&second, .status)
        #expect(throws: InitiatorSession.Violation.self, "StatSN skipped") { try initiator.receive(second) }
        _ = try initiator.receive(first)
        #expect(initiator.expStatSN == first.u32(24) &+ 1, "the one in order is taken")
        // A target that sends an initiator PDU, or a Login Response in full feature phase.
        var fresh = try Self.loggedIn(depth: 8, cmdSN: 100).1
        #expect(throws: InitiatorSession.Violation.self) { try fresh.receive(SCSICommand().frame) }
        #expect(throws: InitiatorSession.Violation.self) { try fresh.receive(LoginResponse().frame) }
        // An initiator that sends a command during login: the target's machine ends the connection.
        var target2 = ConnectionStateMachine(queueDepth: 8)
        var initiator2 = InitiatorSession()
        _ = try target2.receive(initiator2.loginRequest(to: 1, keys: []).frame)
        target2.loginStepEnded(.operational)
        #expect(throws: ConnectionStateMachine.Violation.self) {
            try target2.receive(initiator2.command([0, 0, 0, 0, 0, 0]).frame)
        }
    }
}
