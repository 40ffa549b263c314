import DepotSCSI
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One iSCSI connection (one connection per session: MaxConnections=1,
/// ErrorRecoveryLevel=0). The login is an async loop over the channel's
/// inbound PDUs; from the full feature phase on, `ISCSIFrameHandler` hands
/// each PDU to `received(_:)` on the event loop as it is decoded, in arrival
/// order, and each SCSI command runs as its own task on that event loop, so
/// commands overlap, a slow command never holds up the next, and task
/// management can reach a running task.
///
/// Login-phase state is touched only by the reader. What command tasks share
/// (sequence numbers, the task table, unit attentions) sits behind `lock`, and
/// every PDU leaves through `send`, which stamps and queues under the same lock
/// so StatSN goes out in order (RFC 7143 §4.2.2.2).
final class ISCSIConnection: @unchecked Sendable {
    typealias Inbound = NIOAsyncChannelInboundStream<ISCSIPDU>.AsyncIterator

    enum Closing: Error { case loginFailed }

    let directory: TargetDirectory
    let portals: [String]
    let tsih: UInt16
    var logger: Logger
    let keepalive: Keepalive

    // Reader-only (login, then read-only for command tasks).
    var params = NegotiatedParameters()
    var inFullFeature = false
    var discovery = false
    var initiatorName = ""
    var targetName: String?
    var sentOperationalDeclarations = false
    /// Security stage: done once AuthMethod=None was agreed or CHAP verified.
    var authenticated = false
    var chapIdentifier: UInt8 = 0
    var chapChallenge: [UInt8]?
    /// ISID from the login: with the initiator name it names the I_T nexus.
    var isid: [UInt8] = []

    /// Non-immediate commands that arrived ahead of a CmdSN gap, by CmdSN (reader-only).
    var heldForOrder: [UInt32: ISCSIPDU] = [:]

    // Shared: only under `lock`.
    let lock = NIOLock()
    var statSN: UInt32 = 0
    var expCmdSN: UInt32 = 0
    /// Non-immediate commands accepted and not yet answered; they close the
    /// CmdSN window so at most `queueDepth` are queued at once.
    var commandsInFlight = 0
    var tasks: [UInt32: ISCSITask] = [:]
    var nextTransferTag: UInt32 = 1
    /// The LUN map as this nexus last saw it (LU identity and size), and unit
    /// attentions waiting per LUN (SPC-4 §5.14: established per I_T nexus).
    var seenLUNs: [UInt16: (ObjectIdentifier, UInt64)] = [:]
    var unitAttentions: [UInt16: [SCSISense]] = [:]
    /// Per LU, where this nexus reads the LU's announced unit attentions from.
    var eventCursors: [ObjectIdentifier: UInt64] = [:]
    /// The target's LUN map as of directory generation `lunsGeneration`.
    var luns: [UInt16: LogicalUnit] = [:]
    var lunsGeneration: UInt64 = 0
    /// The target's ALUA access states by portal group, with the LUN map.
    var portalGroupStates: [UInt16: UInt8] = [:]
    /// When a PDU last arrived, and whether a NOP-In ping is waiting for its answer.
    var lastHeard = ContinuousClock.now
    /// A flush is queued on the event loop for what `sendLocked` wrote.
    var flushScheduled = false
    /// The fast lane wrote answers that the end of the read batch flushes (reader-only).
    var fastLaneWrote = false
    /// Fast-lane answers queued in this read batch, and those flushed but not
    /// yet taken by the socket: commands the target still holds (under `lock`).
    var fastLaneQueued = 0
    var fastLaneUnsent = 0
    var pingSent: ContinuousClock.Instant?

    /// Commands a session may have queued (RFC 7143 §4.2.2.1 command window).
    static let queueDepth = 128
    /// Tasks a session may have at once, immediate commands included.
    static let maxTasks = 2 * queueDepth

    /// Command buffers this connection may hold at once (`BufferBudget`):
    /// the largest single transfer (32 MiB and a parameter list's header),
    /// so QD32 of 1 MiB never waits and one hostile connection holds at most
    /// that (a VERIFY or ORWRITE holds its data-out and the medium it reads:
    /// twice).
    let buffers = BufferBudget(limit: ISCSIConnection.maxDataOut)

    /// The I_T nexus (SAM-5 §4.6.2): initiator port name (name + ISID) and target.
    /// Set once as the login enters full feature phase; commands read it often.
    private(set) var nexus = ""

    func nameNexus() {
        nexus = "\(initiatorName.lowercased()),i,0x\(isidText)|\(targetName ?? "")"
        let directory = self.directory
        let initiator = initiatorName
        copyTargets = { directory.copyTarget($0, for: initiator) }
    }

    /// What copy commands of this nexus may name (set with the nexus), and
    /// how PREEMPT AND ABORT reaches other sessions: made once per
    /// connection, not per command.
    private(set) var copyTargets: LogicalUnit.CommandContext.CopyTargets = { _ in nil }
    let abortTasks: LogicalUnit.CommandContext.AbortTasks

    /// Reservations die with the nexus.
    func releaseNexus() {
        guard !nexus.isEmpty, let target = targetName.flatMap({ directory.target($0) }) else { return }
        for lu in target.luns.values { lu.nexusLost(nexus) }
    }

    /// Where the session is registered while in full feature phase.
    let sessionID: Int
    let localAddress: String
    /// The target portal group of the portal this connection came in on.
    let portalGroup: UInt16
    let peerAddress: String
    let channel: any Channel
    let digests: DigestSettings
    /// The channel's first handler; it hands PDUs to `received(_:)` once attached.
    let frames: ISCSIFrameHandler
    /// Runs this connection's tasks on its event loop.
    let executor: EventLoopTaskExecutor
    /// The NOP-In pinger, cancelled when the connection ends (reader-only).
    var pinger: Task<Void, Never>?

    init(
        directory: TargetDirectory, portals: [String], tsih: UInt16, logger: Logger, channel: any Channel, localAddress: String = "", portalGroup: UInt16 = 1,
        peerAddress: String = "", digests: DigestSettings = DigestSettings(), keepalive: Keepalive = Keepalive(),
        frames: ISCSIFrameHandler
    ) {
        self.frames = frames
        self.executor = EventLoopTaskExecutor(channel.eventLoop)
        self.digests = digests
        self.directory = directory
        self.portals = portals
        self.tsih = tsih
        self.logger = logger
        self.sessionID = Int(tsih)
        self.localAddress = localAddress
        self.portalGroup = portalGroup
        let sessions = directory.sessions
        self.abortTasks = { lu, chosen in await sessions.abortTasks(on: lu, where: chosen) }
        self.peerAddress = peerAddress
        self.channel = channel
        self.keepalive = keepalive
    }

    func registerSession() {
        let parameters = [
            "MaxRecvDataSegmentLength(initiator)": "\(params.initiatorMaxRecvDataSegmentLength)",
            "MaxRecvDataSegmentLength(target)": "\(NegotiatedParameters.targetMaxRecvDataSegmentLength)",
            "MaxBurstLength": "\(params.maxBurstLength)", "FirstBurstLength": "\(params.firstBurstLength)",
            "ImmediateData": params.immediateData ? "Yes" : "No", "InitialR2T": "Yes", "HeaderDigest": params.headerDigest ? "CRC32C" : "None", "DataDigest": params.dataDigest ? "CRC32C" : "None",
            "MaxOutstandingR2T": "1", "ErrorRecoveryLevel": "0", "MaxConnections": "1",
            "AuthMethod": targetName.flatMap { directory.target($0) }?.chap == nil || discovery ? "None" : "CHAP",
        ]
        let channel = self.channel
        let connection = self
        directory.sessions.register(
            SessionSnapshot(
                id: sessionID, initiator: initiatorName, target: discovery ? nil : targetName, portal: localAddress, peer: peerAddress,
                isid: isidText, tsih: tsih, parameters: parameters,
                commandsInFlight: 0, loggedInAt: .now),
            close: { channel.close(promise: nil) },
            requestLogout: { seconds in connection.requestLogout(within: seconds) },
            commandsInFlight: { connection.lock.withLock { connection.tasks.count + connection.fastLaneQueued + connection.fastLaneUnsent } },
            nexus: nexus, abortTasks: { lu in await connection.abortTasks(on: lu) })
    }

    /// Logs in from `inbound`; after that the inbound sequence stays empty
    /// (the frame handler takes the PDUs) until the channel closes. Then
    /// every task is aborted and awaited.
    func run(inbound: inout Inbound) async throws {
        do {
            while let pdu = try await inbound.next() {
                heard()
                if inFullFeature {
                    received(pdu)
                } else {
                    try await login(pdu)
                    if inFullFeature, keepalive.interval != nil { pinger = spawn { await self.keepPeerAlive() } }
                }
            }
        } catch Closing.loginFailed {
        } catch {
            await end()
            throw error
        }
        await end()
    }

    /// The peer is gone or logged out: nothing more can arrive for a task.
    private func end() async {
        frames.detach()
        abortAll()
        pinger?.cancel()
        for task in lock.withLock({ Array(tasks.values) }) { try? await task.ended.futureResult.get() }
    }

    /// Any PDU is a sign of life (keepalive).
    func heard() {
        lock.withLock { heardLocked() }
    }

    /// The caller holds `lock`.
    func heardLocked() {
        lastHeard = .now
        pingSent = nil
    }

    /// Starts work on this connection's event loop.
    @discardableResult
    func spawn(_ work: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        Task(executorPreference: executor) { await work() }
    }

    /// Runs a task's work on this connection's event loop; when the work is
    /// done the task leaves the table and `ended` succeeds. An abort that came
    /// first cancels it at once.
    func launch(_ task: ISCSITask, _ work: @escaping @Sendable () async -> Void) {
        let runner = spawn {
            await work()
            self.lock.withLock { self.retireLocked(task) }
            task.ended.succeed()
        }
        lock.withLock {
            task.runner = runner
            if task.aborted { runner.cancel() }
        }
    }

    /// Marks every task aborted and ends their Data-Out waits.
    func abortAll() {
        let all = lock.withLock { Array(tasks.values) }
        for task in all { abort(task) }
    }

    // MARK: Sequence numbers

    var maxCmdSN: UInt32 { expCmdSN &+ UInt32(Self.queueDepth - 1) &- UInt32(min(commandsInFlight, Self.queueDepth)) }

    /// Whether a non-immediate command's CmdSN is inside [ExpCmdSN, MaxCmdSN]
    /// (RFC 7143 §4.2.2.1); the caller holds `lock`.
    func inWindowLocked(_ cmdSN: UInt32) -> Bool {
        let offset = Int64(Int32(bitPattern: cmdSN &- expCmdSN))
        return offset >= 0 && offset < Int64(Self.queueDepth - min(commandsInFlight, Self.queueDepth))
    }

    /// Non-immediate commands advance ExpCmdSN (RFC 7143 §4.2.2.1); the caller holds `lock`.
    func acceptLocked(_ pdu: ISCSIPDU) {
        if !pdu.immediate { acceptLocked(cmdSN: pdu.u32(24)) }
    }

    /// The same for a non-immediate command with `cmdSN`.
    func acceptLocked(cmdSN: UInt32) {
        expCmdSN = cmdSN &+ 1
    }

    func accept(_ pdu: ISCSIPDU) { lock.withLock { acceptLocked(pdu) } }

    /// How a PDU's sequence fields are filled.
    enum Stamp {
        /// A status-bearing PDU: StatSN assigned and advanced.
        case status
        /// R2T, NOP-In ping: StatSN is the next one, not advanced.
        case peek
        /// Data-In without status: ExpCmdSN and MaxCmdSN only.
        case window
    }

    /// The caller holds `lock`.
    func stampLocked(_ pdu: inout ISCSIPDU, _ stamp: Stamp) {
        if inFullFeature {
            pdu.headerDigest = params.headerDigest
            pdu.dataDigest = params.dataDigest
        }
        switch stamp {
        case .status:
            pdu.put32(statSN, 24)
            statSN &+= 1
        case .peek:
            pdu.put32(statSN, 24)
        case .window:
            break
        }
        pdu.put32(expCmdSN, 28)
        pdu.put32(maxCmdSN, 32)
    }

    /// Stamps and queues PDUs in order; the caller holds `lock`. The flush is
    /// left to the end of the event loop's current batch of work, so the
    /// responses of commands that finish together leave in one write(2)
    /// instead of one each.
    /// The PDUs are framed here into one buffer, written as is (no
    /// per-PDU trip through an encoder handler).
    @discardableResult
    func sendLocked(_ pdus: [(ISCSIPDU, Stamp)]) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        writeLocked(pdus, promise: promise)
        return promise.futureResult
    }

    /// Like `sendLocked`, for small answers nobody waits on: no promise.
    func postLocked(_ pdus: [(ISCSIPDU, Stamp)]) {
        writeLocked(pdus, promise: nil)
    }

    private func writeLocked(_ pdus: [(ISCSIPDU, Stamp)], promise: EventLoopPromise<Void>?) {
        var buffer = channel.allocator.buffer(capacity: pdus.reduce(0) { $0 + 56 + $1.0.ahs.count + $1.0.data.count + 8 })
        for (pdu, stamp) in pdus {
            var pdu = pdu
            stampLocked(&pdu, stamp)
            if let bulk = pdu.bulk, bulk.readableBytes >= 8192 {
                // Large read data goes out as its own buffer (gathered by writev), not copied.
                ISCSIFrameEncoder.frameHeader(pdu, into: &buffer)
                channel.write(buffer, promise: nil)
                channel.write(bulk, promise: nil)
                buffer = channel.allocator.buffer(capacity: 64)
                ISCSIFrameEncoder.frameTrailer(pdu, into: &buffer)
            } else {
                ISCSIFrameEncoder.frame(pdu, into: &buffer)
            }
        }
        channel.write(buffer, promise: promise)
        if !flushScheduled {
            flushScheduled = true
            channel.eventLoop.execute {
                self.lock.withLock { self.flushScheduled = false }
                self.channel.flush()
            }
        }
    }

    /// Sends and waits until the last PDU is written (back-pressure).
    func send(_ pdus: [(ISCSIPDU, Stamp)]) async throws {
        try await lock.withLock { sendLocked(pdus) }.get()
    }

    func send(_ pdu: ISCSIPDU, _ stamp: Stamp = .status) async throws {
        try await send([(pdu, stamp)])
    }

    /// Reject (RFC 7143 §11.17) carrying the offending header.
    @discardableResult
    func reject(_ pdu: ISCSIPDU, reason: UInt8) -> EventLoopFuture<Void> {
        var r = ISCSIPDU(opcode: .reject)
        r.flags = 0x80
        r.bhs[2] = reason
        r.initiatorTaskTag = 0xFFFF_FFFF
        r.data = pdu.bhs
        return lock.withLock { sendLocked([(r, .status)]) }
    }
}

/// NOP-In pings (RFC 7143 §11.19) for a connection that has gone quiet, and
/// how long an unanswered one is allowed before the peer counts as dead.
/// `interval` nil turns pinging off.
public struct Keepalive: Sendable {
    public var interval: Duration?
    public var timeout: Duration

    public init(interval: Duration? = .seconds(5), timeout: Duration = .seconds(90)) {
        self.interval = interval
        self.timeout = timeout
    }
}
