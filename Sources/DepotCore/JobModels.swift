/// States of a job: `running` until it ends `succeeded`, `failed` or
/// `cancelled`. After a restart a job that was running resumes (`running`
/// again) or is rolled back (`failed`, saying so).
public enum JobState: String, Codable, Sendable {
    case running, succeeded, failed, cancelled

    public var isFinished: Bool { self != .running }
}

public struct JobInfo: Codable, Sendable, Equatable {
    public var id: String
    /// `full-clone`, `flatten`, `merge`, `import`.
    public var kind: String
    public var object: String
    public var state: JobState
    public var bytesDone: UInt64
    public var bytesTotal: UInt64
    public var percent: Double
    /// Bytes per second over the job's life so far.
    public var rateBytesPerSecond: UInt64
    public var etaSeconds: Int?
    /// The throttle (0: none).
    public var limitBytesPerSecond: UInt64
    public var error: String?
    public var createdAt: String
    public var updatedAt: String
    public var finishedAt: String?

    public init(
        id: String, kind: String, object: String, state: JobState, bytesDone: UInt64, bytesTotal: UInt64,
        percent: Double, rateBytesPerSecond: UInt64, etaSeconds: Int?, limitBytesPerSecond: UInt64, error: String?,
        createdAt: String, updatedAt: String, finishedAt: String?
    ) {
        self.id = id
        self.kind = kind
        self.object = object
        self.state = state
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.percent = percent
        self.rateBytesPerSecond = rateBytesPerSecond
        self.etaSeconds = etaSeconds
        self.limitBytesPerSecond = limitBytesPerSecond
        self.error = error
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }
}

public struct JobList: Codable, Sendable {
    public var jobs: [JobInfo]
    public init(jobs: [JobInfo]) { self.jobs = jobs }
}
