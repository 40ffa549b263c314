import DepotSCSI
import Logging
import NIOCore
import Synchronization

/// One iSCSI connection (one connection per session: MaxConnections=1,
/// ErrorRecoveryLevel=0), and its channel's inbound handler
/// (ISCSIConnection+Inbound.swift): it frames every PDU and takes it on the
/// event loop, in arrival order; the protocol's rules
/// (login phases, the command window, StatSN) are `ConnectionStateMachine`'s,
/// and each SCSI command runs as its own task on the same event loop, so
/// commands overlap, a slow command never holds up the next, and task
/// management can reach a running task.
///
/// Everything mutable here belongs to the event loop: the channel handler
/// callbacks, the tasks (`EventLoopTaskExecutor`) and every callback run
/// there. The connection and its tasks are not `Sendable`, so the
/// compiler refuses to hand them to another thread; where a closure must be
/// `Sendable` (a task's work, the session registry's hooks) they travel as
/// `NIOLoopBound`, which checks the loop at each access, and `confined`
/// checks it where the code relies on it. Work from other threads —
/// shutdown's logout request, another session's PREEMPT AND ABORT, the
/// session list — reaches the connection through `eventLoop.execute` /
/// `submit` or reads an atomic gauge, never its state. So a PDU is stamped
/// and written in one turn of the loop, and StatSN leaves in order (RFC 7143
/// §4.2.2.2).
final class ISCSIConnection {
    typealias Stamp = StatusSequencer.Stamp

    let directory: TargetDirectory
    let tsih: UInt16
    var logger: Logger
    let keepalive: Keepalive

    /// The protocol's state: phase, command window, StatSN.
    var machine = ConnectionStateMachine(queueDepth: ISCSIConnection.queueDepth)

    // Login negotiation (ISCSIConnection+Login.swift).
    var params = NegotiatedParameters()
    var discovery = false
    var initiatorName = ""
    var targetName: String?
    /// The TargetName a login asked for (named in a refusal before `targetName` is set).
    var requestedTarget: String?
    var sentOperationalDeclarations = false
    /// Security stage: done once AuthMethod=None was agreed or CHAP verified.
    var authenticated = false
    var chapIdentifier: UInt8 = 0
    var chapChallenge: [UInt8]?
    /// ISID from the login: with the initiator name it names the I_T nexus.
    var isid: [UInt8] = []

    /// Tasks by Initiator Task Tag, until answered or aborted.
    var tasks: [UInt32: ISCSITask] = [:]
    var nextTransferTag: UInt32 = 1
    /// The SCSI side of the nexus (LUN inventory, unit attentions, ALUA),
    /// made when the nexus is named; and the directory generation of the LUN
    /// map it was last given.
    private(set) var scsi: SCSINexus?
    var lunsGeneration: UInt64 = 0
    /// When a PDU last arrived, and whether a NOP-In ping is waiting for its answer.
    var lastHeard = ContinuousClock.now
    var pingSent: ContinuousClock.Instant?
    /// A flush is queued on the event loop for what `write` queued.
    var flushScheduled = false
    /// The fast lane wrote answers that the end of the read batch flushes.
    var fastLaneWrote = false
    /// Fast-lane answers queued in this read batch, and those flushed but not
    /// yet taken by the socket: commands the target still holds.
    var fastLaneQueued = 0
    var fastLaneUnsent = 0
    /// What `depot session list` reads from other threads: tasks and
    /// fast-lane answers held (`publishInFlight`).
    let inFlightGauge = InFlightGauge()

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

    /// The I_T nexus (SAM-5 §4.6.2): initiator port name (name + ISID) and
    /// target, named as the login's final step is answered; empty before.
    var nexus: ITNexus { scsi?.nexus ?? .none }

    /// Names the nexus and makes its SCSI side: what copy commands of this
    /// nexus may name, how PREEMPT AND ABORT reaches other sessions, where
    /// SET TARGET PORT GROUPS is stored — once per connection, not per command.
    func nameNexus() -> ITNexus {
        let nexus = ITNexus(initiator: initiatorName, isid: isidText, target: targetName ?? "")
        let directory = self.directory
        let initiator = initiatorName
        let target = targetName
        let address = peerHost
        let sessions = directory.sessions
        let logger = self.logger
        scsi = SCSINexus(
            nexus: nexus, portalGroup: portalGroup,
            copyTargets: { directory.copyTarget($0, for: initiator, at: address, from: target) },
            abortTasks: { lu, chosen in await sessions.abortTasks(on: lu, where: chosen) },
            storePortalGroups: { states in
                guard let target else { throw TargetDirectory.PortalGroupError.notStored }
                do {
                    try await directory.setPortalGroups(target, states)
                } catch {
                    logger.error("SET TARGET PORT GROUPS could not be stored", metadata: ["error": "\(error)"])
                    throw error
                }
            })
        return nexus
    }

    /// Reservations die with the nexus.
    func releaseNexus() {
        guard nexus != .none, let target = targetName.flatMap({ directory.target($0) }) else { return }
        for lu in target.luns.values { lu.nexusLost(nexus) }
    }

    /// Where the session is registered while in full feature phase.
    let sessionID: Int
    let localAddress: String
    /// The target portal group of the portal this connection came in on.
    let portalGroup: UInt16
    let peerAddress: String
    /// The peer's address without its port (what failed logins are counted by).
    var peerHost: String {
        guard let colon = peerAddress.lastIndex(of: ":") else { return peerAddress }
        return String(peerAddress[..<colon])
    }
    let channel: any Channel
    let digests: DigestSettings
    // The inbound side (ISCSIConnection+Inbound.swift): separate stored
    // properties, since the decoder works on the pending bytes in place.
    var decoder: ISCSIFrameDecoder
    /// Received bytes not yet framed (nil when there are none).
    var pending: ByteBuffer?
    /// A framing error ends the connection; nothing after it is read.
    var framingFailed = false
    /// Segments of PDUs decoded from `pending` are slices of its storage.
    var segmentsSliced = false
    /// PDUs are taken from when `run` starts until the connection ends.
    var serving = false
    var inboundContext: ChannelHandlerContext?
    /// Runs this connection's tasks on its event loop.
    let executor: EventLoopTaskExecutor
    /// The NOP-In pinger, cancelled when the connection ends.
    var pinger: Task<Void, Never>?

    init(
        directory: TargetDirectory, tsih: UInt16, logger: Logger, channel: any Channel,
        localAddress: String = "", portalGroup: UInt16 = 1,
        peerAddress: String = "", digests: DigestSettings = DigestSettings(), keepalive: Keepalive = Keepalive()
    ) {
        self.decoder = ISCSIFrameDecoder(
            maxDataSegmentLength: NegotiatedParameters.targetMaxRecvDataSegmentLength, digests: digests)
        self.executor = EventLoopTaskExecutor(channel.eventLoop)
        self.digests = digests
        self.directory = directory
        self.tsih = tsih
        self.logger = logger
        self.sessionID = Int(tsih)
        self.localAddress = localAddress
        self.portalGroup = portalGroup
        self.peerAddress = peerAddress
        self.channel = channel
        self.keepalive = keepalive
    }

    func registerSession() {
        let parameters = [
            "MaxRecvDataSegmentLength(initiator)": "\(params.initiatorMaxRecvDataSegmentLength)",
            "MaxRecvDataSegmentLength(target)": "\(NegotiatedParameters.targetMaxRecvDataSegmentLength)",
            "MaxBurstLength": "\(params.maxBurstLength)", "FirstBurstLength": "\(params.firstBurstLength)",
            "ImmediateData": params.immediateData ? "Yes" : "No", "InitialR2T": "Yes",
            "HeaderDigest": params.headerDigest ? "CRC32C" : "None",
            "DataDigest": params.dataDigest ? "CRC32C" : "None",
            "MaxOutstandingR2T": "1", "ErrorRecoveryLevel": "0", "MaxConnections": "1",
            "AuthMethod": targetName.flatMap { directory.target($0) }?.chap == nil || discovery ? "None" : "CHAP",
        ]
        let channel = self.channel
        let connection = NIOLoopBound(self, eventLoop: channel.eventLoop)
        let gauge = inFlightGauge
        directory.sessions.register(
            SessionSnapshot(
                id: sessionID, initiator: initiatorName, target: discovery ? nil : targetName, portal: localAddress,
                peer: peerAddress,
                isid: isidText, tsih: tsih, parameters: parameters,
                commandsInFlight: 0, loggedInAt: .now),
            close: { channel.close(promise: nil) },
            requestLogout: { seconds in channel.eventLoop.execute { connection.value.requestLogout(within: seconds) } },
            commandsInFlight: { gauge.value.load(ordering: .relaxed) },
            nexus: nexus, abortTasks: { lu in await Self.abortTasks(of: connection, on: lu) },
            access: .init(portal: directory.portal(group: portalGroup), host: peerHost))
    }

    /// Commands held now, for the session list on other threads.
    func publishInFlight() {
        inFlightGauge.value.store(tasks.count + fastLaneQueued + fastLaneUnsent, ordering: .relaxed)
    }

    /// Serves the connection until the channel closes: as its inbound
    /// handler it takes every PDU itself, so `closing` only says when the
    /// channel is gone (or fails). Then every task is aborted and awaited,
    /// and the nexus's reservations are released.
    func run(until closing: inout NIOAsyncChannelInboundStream<ISCSIFrame>.AsyncIterator) async throws {
        confined {
            serving = true
            resume()
        }
        defer { releaseNexus() }
        do {
            while try await closing.next() != nil {}
        } catch {
            await end()
            throw error
        }
        await end()
    }

    /// The peer is gone or logged out: nothing more can arrive for a task.
    private func end() async {
        let all = confined { () -> [ISCSITask] in
            serving = false
            machine.close()
            pinger?.cancel()
            return Array(tasks.values)
        }
        for task in all { abort(task) }
        for task in all { try? await task.ended.futureResult.get() }
    }

    /// Checks that the caller is on the connection's event loop, where all of
    /// its state lives; anything else is a bug here, not the peer's.
    @inline(__always)
    func confined<T>(_ body: () throws -> T) rethrows -> T {
        channel.eventLoop.preconditionInEventLoop()
        return try body()
    }

    /// Any PDU is a sign of life (keepalive).
    func heard() {
        lastHeard = .now
        pingSent = nil
    }

    /// Starts work on this connection's event loop.
    @discardableResult
    func spawn(_ work: @escaping () async -> Void) -> Task<Void, Never> {
        // The work (and the connection it uses) belongs to this event loop, where
        // the task runs (executor preference); NIOLoopBound checks it.
        let work = NIOLoopBound(work, eventLoop: channel.eventLoop)
        return Task(executorPreference: executor) { await work.value() }
    }

    /// Runs a task's work on this connection's event loop; when the work is
    /// done the task leaves the table and `ended` succeeds. An abort that came
    /// first cancels it at once.
    func launch(_ task: ISCSITask, _ work: @escaping () async -> Void) {
        let runner = spawn {
            await work()
            self.confined { self.retire(task) }
            task.ended.succeed()
        }
        confined {
            task.runner = runner
            if task.aborted { runner.cancel() }
        }
    }

    // MARK: Sending

    /// Stamps (the machine's StatSN, ExpCmdSN, MaxCmdSN) and queues PDUs in
    /// order. The flush is left to the end of the event loop's current batch
    /// of work, so the responses of commands that finish together leave in
    /// one write(2) instead of one each. The PDUs are framed here into one
    /// buffer, written as is (no per-PDU trip through an encoder handler).
    @discardableResult
    func write(_ pdus: [(ISCSIFrame, Stamp)]) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        frameAndWrite(pdus, promise: promise)
        return promise.futureResult
    }

    /// Like `write`, for small answers nobody waits on: no promise.
    func post(_ pdus: [(ISCSIFrame, Stamp)]) {
        frameAndWrite(pdus, promise: nil)
    }

    private func frameAndWrite(_ pdus: [(ISCSIFrame, Stamp)], promise: EventLoopPromise<Void>?) {
        channel.eventLoop.preconditionInEventLoop()
        // Digests apply from the first PDU after the final Login Response (RFC 7143 §13.1).
        let digested = machine.isPastLogin
        var buffer = channel.allocator.buffer(
            capacity: pdus.reduce(0) {
                $0 + 56 + $1.0.ahs.count + ($1.0.segment.readableBytes < 8192 ? $1.0.segment.readableBytes : 0) + 8
            })
        for (pdu, stamp) in pdus {
            var pdu = pdu
            if digested {
                pdu.headerDigest = params.headerDigest
                pdu.dataDigest = params.dataDigest
            }
            machine.stamp(&pdu, stamp)
            if pdu.segment.readableBytes >= 8192 {
                // Large read data goes out as its own buffer (gathered by writev), not copied.
                ISCSIFrameEncoder.frameHeader(pdu, into: &buffer)
                channel.write(buffer, promise: nil)
                channel.write(pdu.segment, promise: nil)
                buffer = channel.allocator.buffer(capacity: 64)
                ISCSIFrameEncoder.frameTrailer(pdu, into: &buffer)
            } else {
                ISCSIFrameEncoder.frame(pdu, into: &buffer)
            }
        }
        channel.write(buffer, promise: promise)
        if !flushScheduled {
            flushScheduled = true
            channel.eventLoop.assumeIsolated().execute {
                self.flushScheduled = false
                self.channel.flush()
            }
        }
    }

    /// Sends and waits until the last PDU is written (back-pressure).
    func send(_ pdus: [(ISCSIFrame, Stamp)]) async throws {
        try await write(pdus).get()
    }

    func send(_ pdu: ISCSIFrame, _ stamp: Stamp = .status) async throws {
        try await send([(pdu, stamp)])
    }

    /// Reject (RFC 7143 §11.17) carrying the offending header.
    @discardableResult
    func reject(_ pdu: ISCSIFrame, reason: UInt8) -> EventLoopFuture<Void> {
        write([(Reject(reason: reason, rejecting: pdu).frame, .status)])
    }
}

/// Commands a connection holds, published for readers on other threads.
final class InFlightGauge: Sendable {
    let value = Atomic<Int>(0)
}
