import DepotCatalog
import DepotCore
import Foundation
import Logging
import NIOPosix

/// Runs long work as jobs (DESIGN.md: state in the catalog, resumable or
/// rolled back after a crash, cancellable, throttled, with progress).
///
/// A job's row is written when it starts, every two seconds while it runs
/// (bytes done), and when it ends. The work itself belongs to its owner
/// (the storage manager's clones, flattens and merges): a job is started
/// with a body, and after a restart the owner finds the jobs still marked
/// `running` (`interrupted()`) and resumes each with its body, or ends it
/// as rolled back (`abandon`). Blocking work runs on the jobs' own threads
/// (`runBlocking`), so a copy never takes the threads LUN I/O runs on.
public actor JobManager {
    let catalog: Catalog
    let logger: Logger
    /// The throttle of jobs started without one (bytes/s; 0: none).
    public let defaultLimit: UInt64
    private var running: [String: (context: JobContext, task: Task<Void, Never>)] = [:]
    private let threads: NIOThreadPool
    /// Set at shutdown: jobs stopped then stay `running` in the catalog.
    private var stopping = false

    public init(catalog: Catalog, logger: Logger, defaultLimit: UInt64 = 0, threads: Int = 2) {
        self.catalog = catalog
        self.logger = logger
        self.defaultLimit = defaultLimit
        self.threads = NIOThreadPool(numberOfThreads: threads)
        self.threads.start()
    }

    public typealias Body = @Sendable (JobContext) async throws -> Void

    /// Starts a job: its row (running), then `body` in a task of its own.
    public func start(
        kind: String, object: String, bytesTotal: UInt64, limit: UInt64?, parameters: String, body: @escaping Body
    )
        async throws(DepotError) -> JobInfo
    {
        let id = String(UUID().uuidString.lowercased().prefix(8))
        let record = JobRecord(
            id: id, kind: kind, object: object, state: JobState.running.rawValue,
            bytesTotal: Int64(clamping: bytesTotal),
            rateBytes: Int64(clamping: limit ?? defaultLimit), parameters: parameters, createdAt: Timestamp.now())
        try await catalog.saveJob(record)
        run(record, body: body)
        logger.info("job started", metadata: ["job": "\(id)", "kind": "\(kind)", "object": "\(object)"])
        return info(record, context: running[id]?.context)
    }

    /// Jobs a restart found marked running (their work was cut).
    public func interrupted() async throws(DepotError) -> [JobRecord] {
        try await catalog.jobs().filter { $0.state == JobState.running.rawValue && running[$0.id] == nil }
    }

    /// Runs an interrupted job's body again (the work must be idempotent
    /// from the state its files are in).
    public func resume(_ record: JobRecord, body: @escaping Body) {
        logger.notice("job resumed after a restart", metadata: ["job": "\(record.id)", "kind": "\(record.kind)"])
        run(record, body: body)
    }

    /// Ends an interrupted job that cannot resume, saying what was undone.
    public func abandon(_ record: JobRecord, reason: String) async {
        var ended = record
        ended.state = JobState.failed.rawValue
        ended.error = reason
        ended.finishedAt = Timestamp.now()
        ended.updatedAt = ended.finishedAt!
        try? await catalog.saveJob(ended)
        logger.warning("job rolled back after a restart", metadata: ["job": "\(record.id)", "reason": "\(reason)"])
    }

    private func run(_ record: JobRecord, body: @escaping Body) {
        let context = JobContext(
            id: record.id, parameters: record.parameters, total: UInt64(max(0, record.bytesTotal)),
            limit: UInt64(max(0, record.rateBytes)))
        let task = Task { [weak self] in
            let saver = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(2))
                    await self?.save(record.id, state: .running, error: nil)
                }
            }
            var state = JobState.succeeded
            var message: String?
            do { try await body(context) } catch is JobCancelled {
                state = .cancelled
            } catch {
                state = context.isCancelled ? .cancelled : .failed
                message = "\(error)"
            }
            saver.cancel()
            await self?.finish(record.id, state: state, error: message)
        }
        running[record.id] = (context, task)
    }

    private func save(_ id: String, state: JobState, error: String?) async {
        guard var record = try? await catalog.job(id: id) else { return }
        if let context = running[id]?.context {
            record.bytesDone = Int64(context.bytesDone)
            record.bytesTotal = Int64(context.bytesTotal)
        }
        record.state = state.rawValue
        record.error = error
        record.updatedAt = Timestamp.now()
        if state.isFinished { record.finishedAt = record.updatedAt }
        do { try await catalog.saveJob(record) } catch {
            logger.error("job state not saved", metadata: ["job": "\(id)", "error": "\(error)"])
        }
    }

    private func finish(_ id: String, state: JobState, error: String?) async {
        if stopping, state != .succeeded {
            // Stopped by the shutdown, not by the user: the next start resumes it.
            await save(id, state: .running, error: nil)
            running[id] = nil
            return
        }
        await save(id, state: state, error: error)
        running[id] = nil
        logger.info(
            "job ended", metadata: ["job": "\(id)", "state": "\(state.rawValue)", "error": "\(error ?? "")"])
    }

    public func list() async throws(DepotError) -> [JobInfo] {
        try await catalog.jobs().map { info($0, context: running[$0.id]?.context) }
    }

    public func show(_ id: String) async throws(DepotError) -> JobInfo {
        guard let record = try await catalog.job(id: id) else { throw .notFound("job '\(id)' not found") }
        return info(record, context: running[id]?.context)
    }

    /// Cancels a running job: its work stops at the next piece and undoes
    /// itself (the source is left as it was). A finished job is refused.
    public func cancel(_ id: String) async throws(DepotError) -> JobInfo {
        guard let record = try await catalog.job(id: id) else { throw .notFound("job '\(id)' not found") }
        guard let entry = running[id] else {
            throw .conflict("job '\(id)' is \(record.state), not running; nothing to cancel")
        }
        entry.context.cancelFlag.cancel()
        logger.info("job cancel requested", metadata: ["job": "\(id)"])
        return info(record, context: entry.context)
    }

    /// Waits until the job ends; returns how it ended.
    public func wait(_ id: String) async throws(DepotError) -> JobInfo {
        if let task = running[id]?.task { await task.value }
        return try await show(id)
    }

    /// Waits until the job ends or `limit` passes, whichever is first (a
    /// long poll: `GET /v1/jobs/ID?wait=SECONDS`); returns the job as it is then.
    public func wait(_ id: String, atMost limit: Duration) async throws(DepotError) -> JobInfo {
        let deadline = ContinuousClock.now + limit
        // Checked every 10 ms on the actor (a job ends in `finish`, here too).
        while running[id] != nil, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return try await show(id)
    }

    /// Whether a job is running on `object` now.
    public func isRunning(object: String) async -> Bool {
        guard let records = try? await catalog.jobs() else { return false }
        return records.contains { $0.object == object && running[$0.id] != nil }
    }

    /// Runs blocking work on the jobs' threads.
    public nonisolated func runBlocking<T: Sendable>(_ body: @Sendable @escaping () throws -> T) async throws -> T {
        try await threads.runIfActive(body)
    }

    /// At shutdown: running jobs are asked to stop and awaited; their rows
    /// stay `running`, so the next start resumes them.
    public func shutdown() async {
        stopping = true
        for (_, entry) in running { entry.context.cancelFlag.cancel() }
        for (_, entry) in running { await entry.task.value }
        try? await threads.shutdownGracefully()
    }

    func info(_ record: JobRecord, context: JobContext?) -> JobInfo {
        let done = context?.bytesDone ?? UInt64(max(0, record.bytesDone))
        let total = context?.bytesTotal ?? UInt64(max(0, record.bytesTotal))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let start = formatter.date(from: record.createdAt) ?? Date()
        let end = record.finishedAt.flatMap { formatter.date(from: $0) } ?? Date()
        let seconds = max(0.001, end.timeIntervalSince(start))
        let rate = UInt64(Double(done) / seconds)
        let state = JobState(rawValue: record.state) ?? .failed
        var eta: Int?
        if state == .running, rate > 0, total > done { eta = Int(Double(total - done) / Double(rate)) }
        return JobInfo(
            id: record.id, kind: record.kind, object: record.object, state: state, bytesDone: done, bytesTotal: total,
            percent: total == 0 ? (state == .succeeded ? 100 : 0) : min(100, Double(done) * 100 / Double(total)),
            rateBytesPerSecond: rate, etaSeconds: eta, limitBytesPerSecond: UInt64(max(0, record.rateBytes)),
            error: record.error, createdAt: record.createdAt, updatedAt: record.updatedAt, finishedAt: record.finishedAt
        )
    }
}
