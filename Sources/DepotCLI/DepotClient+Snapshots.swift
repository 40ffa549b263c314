import DepotCore
import Foundation
import NIOCore
import AsyncHTTPClient

extension DepotClient {
    static func path(_ ref: VolumeRef) -> String { "/v1/pools/\(ref.pool)/volumes/\(ref.name)" }

    public func snapshots(volume: VolumeRef?) async throws -> [SnapshotInfo] {
        let path = volume.map { Self.path($0) + "/snapshots" } ?? "/v1/snapshots"
        return try await get(path, as: SnapshotList.self).snapshots
    }

    public func snapshot(_ ref: SnapshotRef) async throws -> SnapshotInfo {
        try await get(Self.path(ref.volume) + "/snapshots/\(ref.name)", as: SnapshotInfo.self)
    }

    public func createSnapshot(_ ref: SnapshotRef, allowOvercommit: Bool = false) async throws -> SnapshotInfo {
        try await post(
            Self.path(ref.volume) + "/snapshots",
            CreateSnapshotRequest(name: ref.name, allowOvercommit: allowOvercommit ? true : nil), as: SnapshotInfo.self)
    }

    /// Deletes a snapshot; the merge job when it has a layer above it.
    public func deleteSnapshot(_ ref: SnapshotRef) async throws -> JobInfo? {
        let data = try await send("DELETE", Self.path(ref.volume) + "/snapshots/\(ref.name)")
        return data.isEmpty ? nil : try decode(JobInfo.self, data)
    }

    public func rollback(_ ref: SnapshotRef, force: Bool) async throws -> VolumeInfo {
        try await post(
            Self.path(ref.volume) + "/rollback", RollbackRequest(snapshot: ref.name, force: force ? true : nil),
            as: VolumeInfo.self)
    }

    public func clone(_ ref: SnapshotRef, to target: VolumeRef, full: Bool, rateMiB: Int?) async throws -> JobStarted {
        try await post(
            Self.path(ref.volume) + "/clone",
            CloneRequest(snapshot: ref.name, target: target.description, full: full ? true : nil, rateMiB: rateMiB),
            as: JobStarted.self)
    }

    public func importVolume(_ ref: VolumeRef, _ request: ImportVolumeRequest) async throws -> JobStarted {
        try await post(Self.path(ref) + "/import", request, as: JobStarted.self)
    }

    public func exportVolume(_ ref: VolumeRef, _ request: ImageExportRequest) async throws -> JobInfo {
        try await post(Self.path(ref) + "/export", request, as: JobInfo.self)
    }

    /// `GET …/export`: the raw image streamed into `output` as it arrives.
    public func downloadExport(_ ref: VolumeRef, snapshot: String?, to output: FileHandle) async throws {
        var path = Self.path(ref) + "/export?format=raw"
        if let snapshot { path += "&snapshot=\(snapshot)" }
        try await receive(path) { chunk in try output.write(contentsOf: Data(chunk.readableBytesView)) }
    }

    /// The image read from `input` (standard input) streamed as the body of
    /// `PUT …/content`, 1 MiB at a time.
    public func uploadVolume(_ ref: VolumeRef, _ request: ImportVolumeRequest, from input: FileHandle) async throws
        -> JobStarted
    {
        var query = ["format=\(request.format ?? "auto")"]
        if let format = request.as { query.append("as=\(format.rawValue)") }
        if let provisioning = request.provisioning { query.append("provisioning=\(provisioning.rawValue)") }
        if let rate = request.rateMiB { query.append("rateMiB=\(rate)") }
        let chunks = FileChunks(handle: input)
        let data = try await send(
            "PUT", Self.path(ref) + "/content?" + query.joined(separator: "&"),
            raw: .stream(chunks, length: .unknown), contentType: "application/octet-stream")
        return try decode(JobStarted.self, data)
    }

    /// After a failed flush: lets SYNCHRONIZE CACHE and FUA writes reach the volume again.
    public func clearError(_ ref: VolumeRef) async throws -> VolumeInfo {
        try decode(VolumeInfo.self, try await send("POST", Self.path(ref) + "/clear-error"))
    }

    public func flatten(_ ref: VolumeRef, rateMiB: Int?) async throws -> JobInfo {
        try await post(Self.path(ref) + "/flatten", FlattenRequest(rateMiB: rateMiB), as: JobInfo.self)
    }

    public func jobs() async throws -> [JobInfo] { try await get("/v1/jobs", as: JobList.self).jobs }
    public func job(_ id: String) async throws -> JobInfo { try await get("/v1/jobs/\(id)", as: JobInfo.self) }

    public func cancelJob(_ id: String) async throws -> JobInfo {
        try decode(JobInfo.self, try await send("DELETE", "/v1/jobs/\(id)"))
    }

    /// Waits for a job to end, drawing its progress (a bar on a terminal,
    /// lines otherwise, nothing when quiet); a job that did not succeed is
    /// an error naming how it ended.
    func wait(for job: JobInfo, quiet: Bool) async throws -> JobInfo {
        let id = job.id
        let ended = try await ProgressBar.whileRunning(
            label: "\(job.kind) \(job.object)", style: ProgressBar.style(quiet: quiet),
            poll: { (try? await self.job(id)).map { $0.percent / 100 } }
        ) {
            while true {
                // A long poll: the daemon answers as the job ends (or after 10 s).
                let asked = ContinuousClock.now
                let now = try await self.get("/v1/jobs/\(id)?wait=10", as: JobInfo.self)
                if now.state.isFinished { return now }
                // An answer at once that is not the end (a daemon without long polls): not a busy loop.
                if ContinuousClock.now - asked < .seconds(1) { try await Task.sleep(for: .milliseconds(200)) }
            }
        }
        guard ended.state == .succeeded else {
            throw Failure(
                status: nil, code: "job_\(ended.state.rawValue)",
                message: "job \(ended.id) (\(ended.kind) \(ended.object)) \(ended.state.rawValue)"
                    + (ended.error.map { ": \($0)" } ?? ""))
        }
        return ended
    }
}

/// A file read 1 MiB at a time as it is asked for: an upload's body that
/// reads no further ahead than the connection takes (no unbounded buffer).
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let handle: FileHandle

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle
        mutating func next() async throws -> ByteBuffer? {
            let data = try handle.read(upToCount: 1 << 20) ?? Data()
            return data.isEmpty ? nil : ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }
}
