import DepotSCSI
import NIOCore

extension ISCSIConnection {
    /// Every PDU, on the event loop, in arrival order: the state machine says
    /// what it means in this phase. Login Requests are negotiated as tasks
    /// (the connection decodes nothing more until each is answered); full
    /// feature PDUs are delivered in CmdSN order; a violation ends the connection.
    func received(_ pdu: ISCSIFrame) {
        channel.eventLoop.preconditionInEventLoop()
        heard()
        let action: ConnectionStateMachine.Action
        do {
            action = try machine.receive(pdu)
        } catch {
            logger.warning("protocol violation: closing the connection", metadata: ["why": "\(error.description)"])
            machine.close()
            channel.close(promise: nil)
            return
        }
        perform(action)
    }

    func perform(_ action: ConnectionStateMachine.Action) {
        switch action {
        case .negotiate(let request):
            spawn { await self.negotiate(request) }
        case .deliver(let deliveries):
            for delivery in deliveries { deliver(delivery.pdu, expCmdSN: delivery.expCmdSN) }
        case .reject(let refused, let reason):
            reject(refused, reason: reason)
        case .none:
            break
        }
    }

    /// Delivers the commands held for a CmdSN gap the fast lane has filled.
    func deliverHeld() {
        for delivery in machine.releaseHeld() { deliver(delivery.pdu, expCmdSN: delivery.expCmdSN) }
    }

    /// One full feature PDU the machine has accepted; `expCmdSN` is ExpCmdSN before it.
    private func deliver(_ pdu: ISCSIFrame, expCmdSN: UInt32) {
        switch ISCSIPDU(pdu) {
        case .scsiCommand(let command):
            ISCSIMetrics.generalCommands.increment()
            let task = ISCSITask(command: command, eventLoop: channel.eventLoop)
            // An Initiator Task Tag names one task at a time (RFC 7143 §11.2.1.8).
            let duplicate = tasks[task.tag] != nil
            if !duplicate {
                tasks[task.tag] = task
                if task.windowed { machine.windowedTaskStarted() }
                publishInFlight()
            }
            // Immediate commands are outside the CmdSN window (RFC 7143 §3.2.2.1),
            // so nothing else bounds them: past the limit they get TASK SET FULL.
            let full = !duplicate && !task.windowed && tasks.count > Self.maxTasks
            if duplicate {
                task.ended.succeed()  // never ran
                reject(pdu, reason: 0x04)
                return
            }
            if full {
                launch(task) {
                    self.abortDataOut(task)
                    try? await self.respond(
                        task, result: SCSIResult(status: SCSIResult.taskSetFull, sense: nil, dataIn: []),
                        expected: Int(command.expectedLength), isWrite: command.write, needed: nil)
                }
                return
            }
            launch(task) { try? await self.run(task) }
        case .dataOut(let data):
            // Data-Out goes to the task that solicited it; none is a protocol error (RFC 7143 §11.7).
            let routed = { () -> Bool? in
                guard let task = tasks[data.tag], let sink = task.dataOutSink else { return false }
                // A task holds at most `ISCSITask.dataOutBacklog` PDUs and two bursts of
                // bytes it has not taken: more is data nobody solicited, sent faster
                // than it can be refused.
                guard task.queuedDataOut + pdu.dataSegmentLength <= ISCSITask.dataOutBacklogBytes else { return nil }
                if case .dropped = sink.yield(pdu) { return nil }
                task.queuedDataOut += pdu.dataSegmentLength
                return true
            }()
            switch routed {
            case true: break
            case false: reject(pdu, reason: 0x04)
            case nil:
                logger.warning("Data-Out flood beyond what was solicited: closing the connection")
                channel.close(promise: nil)
            }
        case .nopOut(let nop):
            // A NOP-Out with a real ITT is a ping: answer with NOP-In, echoing data (RFC 7143 §11.18).
            // ITT 0xffffffff is the answer to our ping (or a bare CmdSN update): nothing to send.
            guard nop.isPing else { return }
            var answer = NOPIn()
            answer.lun = nop.lun
            answer.tag = nop.tag
            answer.data = nop.data
            post([(answer.frame, .status)])
        case .textRequest(let request):
            text(request)
        case .taskManagementRequest(let request):
            // Selected and marked aborted in one turn of the loop: a task still in the
            // table has not answered, and now never will.
            let affected = TaskManagement.select(request, tasks: tasks, expCmdSN: expCmdSN)
            if affected.response == .functionComplete, affected.function != nil, lunExists(request, affected) {
                for task in affected.tasks {
                    task.aborted = true
                    task.stopDataOut()
                }
            }
            spawn { try? await self.manage(request, affected) }
        case .logoutRequest(let request):
            // Logout closes the session (RFC 7143 §11.14): commands still waiting for
            // data are aborted, the rest finish and answer before the Logout Response;
            // the connection closes once it is written.
            let running = Array(tasks.values)
            for task in running where task.dataOutSink != nil { abort(task) }
            spawn {
                for task in running { try? await task.ended.futureResult.get() }
                // The nexus ends here: its reservation is released before the initiator
                // hears the session is closed, so its next command elsewhere finds it gone.
                self.releaseNexus()
                var response = LogoutResponse()
                response.tag = request.tag
                try? await self.send(response.frame)
                self.logger.info("session logged out")
                try? await self.channel.close()
            }
        case .loginRequest:
            // A Login Request in full feature phase would add a connection (MaxConnections=1).
            reject(pdu, reason: 0x04)
        case .snackRequest, .nopIn, .scsiResponse, .taskManagementResponse, .loginResponse, .textResponse, .dataIn,
            .logoutResponse, .r2t,
            .asyncMessage, .reject, .unknown:
            // SNACK needs ErrorRecoveryLevel > 0; the rest are not initiator PDUs (§11.17.1: 05h).
            reject(pdu, reason: 0x05)
        }
    }

    /// SendTargets (RFC 7143 §12.3; Appendix C): the targets this initiator may
    /// log into from its address through this portal, each with the portals
    /// it is served on.
    func text(_ request: TextRequest) {
        var answers: [(String, String)] = []
        let portals = directory.portals
        let here = directory.portal(group: portalGroup)
        for (key, value) in TextKeys.parse(request.data) where key == "SendTargets" {
            let wanted = value == "All" ? nil : value.lowercased()
            for target in directory.all
            where target.served(at: here) && target.admits(initiatorName, from: peerHost) {
                if let wanted, wanted != target.iqn { continue }
                if value.isEmpty, !discovery, target.iqn != targetName { continue }
                answers.append(("TargetName", target.iqn))
                // Each portal is a target portal group of its own, numbered from 1.
                for (index, portal) in portals.enumerated() where target.served(at: portal) {
                    answers.append(("TargetAddress", "\(portal),\(index + 1)"))
                }
            }
        }
        var response = TextResponse()
        response.tag = request.tag
        response.data = TextKeys.encode(answers)
        post([(response.frame, .status)])
    }
}
