import DepotSCSI
import NIOCore

/// One SCSI command from its SCSI Command PDU until its status is sent or
/// it is aborted (RFC 7143 §4.4.1: a task is named by its Initiator Task Tag).
/// Like the connection's state, it is touched only on the connection's event loop.
final class ISCSITask {
    let command: SCSICommand
    let tag: UInt32
    let lun: UInt16?
    /// Counts against the command window (non-immediate commands do).
    let windowed: Bool
    /// Data-Out PDUs the reader routes here while the task solicits data
    /// (made only for writes whose data does not all come with the command).
    let dataOut: AsyncStream<ISCSIFrame>?
    private(set) var dataOutSink: AsyncStream<ISCSIFrame>.Continuation?
    /// Set by ABORT TASK, the task-set functions, resets and connection loss:
    /// the task then ends without sending a response (SAM-5 §7.2: no status
    /// is returned for an aborted task).
    var aborted = false {
        // An aborted task's Swift task is cancelled too: the few handlers that
        // wait on something that outlives the command (SANITIZE) stop waiting.
        didSet { if aborted { runner?.cancel() } }
    }
    /// The Swift task running the command.
    var runner: Task<Void, Never>?
    /// Succeeds when the task has ended, answered or not.
    let ended: EventLoopPromise<Void>

    /// `dataOutFollows` nil: decided from the command (W bit and less
    /// immediate data than the expected transfer length: R2Ts will follow).
    init(command: SCSICommand, eventLoop: any EventLoop, dataOutFollows: Bool? = nil) {
        self.command = command
        self.tag = command.tag
        self.lun = ReportLUNs.number(command.lun)
        self.windowed = !command.immediate
        if dataOutFollows ?? (command.write && command.data.readableBytes < Int(command.expectedLength)) {
            let (stream, sink) = AsyncStream<ISCSIFrame>.makeStream(
                bufferingPolicy: .bufferingOldest(Self.dataOutBacklog))
            self.dataOut = stream
            self.dataOutSink = sink
        } else {
            self.dataOut = nil
            self.dataOutSink = nil
        }
        self.ended = eventLoop.makePromise()
    }

    /// Data-Out PDUs a task may have waiting: one burst (MaxBurstLength 1 MiB)
    /// in PDUs of 512 bytes, the smallest an initiator may declare.
    static let dataOutBacklog = NegotiatedParameters.targetMaxBurstLength / 512 + 16
    /// Data-Out bytes a task may have waiting: two bursts. A task asks for
    /// one burst at a time, so more is data nobody solicited.
    static let dataOutBacklogBytes = 2 * NegotiatedParameters.targetMaxBurstLength
    /// Bytes routed to `dataOut` and not yet taken.
    var queuedDataOut = 0

    /// Ends the Data-Out stream.
    func stopDataOut() {
        dataOutSink?.finish()
        dataOutSink = nil
    }
}

extension ISCSIConnection {
    /// Ends a task's Data-Out stream (it will not solicit any).
    func abortDataOut(_ task: ISCSITask) {
        confined { task.stopDataOut() }
    }

    /// Aborts one task: no response will be sent for it and any wait for
    /// Data-Out ends.
    func abort(_ task: ISCSITask) {
        confined {
            task.aborted = true
            task.stopDataOut()
        }
    }

    /// Aborts this session's tasks on `lu` (no status is sent for them) and
    /// waits until they have ended. Called from other sessions' tasks (PREEMPT
    /// AND ABORT): the choice is made on the connection's own event loop.
    static func abortTasks(of connection: NIOLoopBound<ISCSIConnection>, on lu: LogicalUnit) async {
        let ended =
            (try? await connection.eventLoop.submit { () -> [EventLoopFuture<Void>] in
                let this = connection.value
                let luns = this.refreshLUNs()
                let chosen = this.tasks.values.filter { task in task.lun.flatMap { luns[$0] } === lu }
                for task in chosen {
                    task.aborted = true
                    task.stopDataOut()
                }
                return chosen.map(\.ended.futureResult)
            }.get()) ?? []
        for future in ended { try? await future.get() }
    }

    /// Removes an ended task from the table, reopening its slot in the
    /// command window.
    func retire(_ task: ISCSITask) {
        if tasks[task.tag] === task {
            tasks[task.tag] = nil
            if task.windowed { machine.windowedTaskEnded() }
            publishInFlight()
        }
        task.stopDataOut()
    }
}
