import DepotSCSI
import NIOCore

/// Task management functions (RFC 7143 §11.5, §11.6; SAM-5 §7).
enum TaskManagement {
    /// Function codes (RFC 7143 §11.5.1).
    enum Function: UInt8 {
        case abortTask = 1, abortTaskSet = 2, clearACA = 3, clearTaskSet = 4
        case logicalUnitReset = 5, targetWarmReset = 6, targetColdReset = 7, taskReassign = 8
    }

    /// Responses (RFC 7143 §11.6.1).
    enum Response: UInt8 {
        case functionComplete = 0, taskDoesNotExist = 1, lunDoesNotExist = 2
        case reassignmentNotSupported = 4, notSupported = 5
    }

    /// What a request touches, decided when it is read so that it sees exactly
    /// the tasks that arrived before it.
    struct Outcome {
        var function: Function?
        var response: Response
        var tasks: [ISCSITask]
    }

    /// On the connection's event loop; `expCmdSN` is the value before
    /// the request itself was accepted.
    static func select(_ request: TaskManagementRequest, tasks: [UInt32: ISCSITask], expCmdSN: UInt32) -> Outcome {
        let lun = ReportLUNs.number(request.lun)
        guard let function = Function(rawValue: request.function) else {
            return Outcome(function: nil, response: .notSupported, tasks: [])
        }
        switch function {
        case .abortTask:
            let referenced = request.referencedTag
            if let task = tasks[referenced] {
                return Outcome(function: function, response: .functionComplete, tasks: [task])
            }
            // Not found (§11.6.1 b, c): a RefCmdSN inside the window and before this
            // request's CmdSN names a command not yet received, which is now considered
            // received and done; any other RefCmdSN names a task that already ended.
            let refCmdSN = request.refCmdSN
            let sinceExpected = Int32(bitPattern: refCmdSN &- expCmdSN)
            let beforeRequest = Int32(bitPattern: request.cmdSN &- refCmdSN)
            let pending = sinceExpected >= 0 && beforeRequest > 0
            return Outcome(function: function, response: pending ? .functionComplete : .taskDoesNotExist, tasks: [])
        case .abortTaskSet, .clearTaskSet, .logicalUnitReset:
            return Outcome(
                function: function, response: .functionComplete, tasks: tasks.values.filter { $0.lun == lun })
        case .targetWarmReset, .targetColdReset:
            return Outcome(function: function, response: .functionComplete, tasks: Array(tasks.values))
        case .clearACA:
            // NACA is refused in every CDB, so no ACA can exist to clear.
            return Outcome(function: function, response: .notSupported, tasks: [])
        case .taskReassign:
            // Only with ErrorRecoveryLevel 2 (RFC 7143 §11.6.1).
            return Outcome(function: function, response: .reassignmentNotSupported, tasks: [])
        }
    }
}

extension ISCSIConnection {
    /// False when a LUN-addressed function names a LUN that is not mapped;
    /// on the event loop.
    func lunExists(_ request: TaskManagementRequest, _ outcome: TaskManagement.Outcome) -> Bool {
        guard let function = outcome.function, [.abortTaskSet, .clearTaskSet, .logicalUnitReset].contains(function)
        else { return true }
        return ReportLUNs.number(request.lun).flatMap { refreshLUNs()[$0] } != nil
    }

    /// Carries out a task management request. The affected tasks were marked
    /// aborted when the request was read; they have ended before the response
    /// goes out, so no response of an aborted task can follow it (RFC 7143
    /// §11.6: the response is sent once every affected task has been terminated).
    func manage(_ request: TaskManagementRequest, _ outcome: TaskManagement.Outcome) async throws {
        var response = outcome.response
        let target = targetName.flatMap { directory.target($0) }
        let lun = ReportLUNs.number(request.lun)
        if !confined({ lunExists(request, outcome) }) { response = .lunDoesNotExist }
        if response == .functionComplete {
            for task in outcome.tasks { try? await task.ended.futureResult.get() }
            switch outcome.function {
            case .logicalUnitReset:
                // LUN RESET clears the LU's reservation (SPC-2 §5.5.3) and tells every
                // nexus, the requester's too: BUS DEVICE RESET FUNCTION OCCURRED
                // (SAM-5 §6.3.3: a unit attention for all I_T nexuses).
                if let lun, let lu = target?.luns[lun] {
                    lu.clearReservation()
                    lu.announce(.busDeviceReset, except: nil)
                }
            case .targetWarmReset, .targetColdReset:
                // A target reset is a hard reset of the SCSI target device (RFC 7143
                // §11.5.1): every LU clears its SPC-2 reservation and establishes a unit
                // attention for every I_T nexus, the requester's too (SAM-5 §6.3.2). Its
                // code is POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h), which
                // SAM-5 allows for every reset event and initiators retry on; 29h/03h
                // stays the LUN reset's own (§6.3.3).
                for lu in target?.luns.values.map({ $0 }) ?? [] {
                    lu.clearReservation()
                    lu.announce(.powerOnReset, except: nil)
                }
            default:
                break
            }
        }
        var answer = TaskManagementResponse()
        answer.tag = request.tag
        answer.response = response.rawValue
        try await send(answer.frame)
        if outcome.function == .targetColdReset, response == .functionComplete, let targetName {
            // TARGET COLD RESET: after the response the target terminates all of its
            // TCP connections to all initiators (RFC 7143 §11.5.1), this one included,
            // as a power cycle would; every nexus that logs in again meets POWER ON,
            // RESET, OR BUS DEVICE RESET OCCURRED on its first command.
            for lu in target?.luns.values.map({ $0 }) ?? [] { directory.forgetContacts(volume: lu.uuid) }
            let closed = directory.sessions.closeSessions(of: targetName)
            logger.info("target cold reset: closing every session of the target", metadata: ["sessions": "\(closed)"])
            try await channel.close()
        }
    }
}
