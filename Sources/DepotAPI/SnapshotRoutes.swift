import DepotCore
import DepotStorage
import DepotTargets
import Hummingbird

/// `/v1/pools/{pool}/volumes/{name}/snapshots[/{snap}]`, `…/rollback`,
/// `…/clone`, `…/flatten`, and `/v1/snapshots` (every snapshot).
struct SnapshotRoutes {
    let storage: StorageManager
    let targets: TargetManager

    func register(on group: RouterGroup<DepotRequestContext>) {
        group.get("snapshots") { _, _ -> SnapshotList in
            SnapshotList(snapshots: try await storage.listSnapshots(volume: nil))
        }
        group.get("pools/:pool/volumes/:name/snapshots") { _, context -> SnapshotList in
            SnapshotList(snapshots: try await storage.listSnapshots(volume: try volumeRef(context)))
        }
        group.post("pools/:pool/volumes/:name/snapshots") { request, context -> EditedResponse<SnapshotInfo> in
            let body = try await request.decode(as: CreateSnapshotRequest.self, context: context)
            try ObjectName.validate(body.name, kind: "snapshot")
            let ref = SnapshotRef(volume: try volumeRef(context), name: body.name)
            let info = try await storage.createSnapshot(ref, allowOvercommit: body.allowOvercommit ?? false)
            return EditedResponse(status: .created, response: info)
        }
        group.get("pools/:pool/volumes/:name/snapshots/:snap") { _, context -> SnapshotInfo in
            try await storage.snapshot(try snapshotRef(context))
        }
        // A snapshot with one layer above is merged into it: 202 and the job.
        group.delete("pools/:pool/volumes/:name/snapshots/:snap") { request, context -> Response in
            if let job = try await storage.deleteSnapshot(try snapshotRef(context)) {
                return try EditedResponse(status: .accepted, response: job).response(from: request, context: context)
            }
            return Response(status: .noContent)
        }
        group.post("pools/:pool/volumes/:name/rollback") { request, context -> VolumeInfo in
            let body = try await request.decode(as: RollbackRequest.self, context: context)
            try ObjectName.validate(body.snapshot, kind: "snapshot")
            let ref = SnapshotRef(volume: try volumeRef(context), name: body.snapshot)
            return try await targets.rollbackVolume(ref, force: body.force ?? false)
        }
        group.post("pools/:pool/volumes/:name/clone") { request, context -> EditedResponse<JobStarted> in
            let body = try await request.decode(as: CloneRequest.self, context: context)
            try ObjectName.validate(body.snapshot, kind: "snapshot")
            let source = SnapshotRef(volume: try volumeRef(context), name: body.snapshot)
            let target = try VolumeRef(parsing: body.target)
            if body.full ?? false {
                let started = try await storage.fullClone(source, as: target, rateMiB: body.rateMiB)
                return EditedResponse(status: .accepted, response: started)
            }
            let volume = try await storage.linkedClone(source, as: target)
            return EditedResponse(status: .created, response: JobStarted(job: nil, volume: volume))
        }
        group.post("pools/:pool/volumes/:name/flatten") { request, context -> EditedResponse<JobInfo> in
            let body =
                request.headers[.contentLength] == nil || request.headers[.contentLength] == "0"
                ? FlattenRequest() : try await request.decode(as: FlattenRequest.self, context: context)
            let job = try await storage.flatten(try volumeRef(context), rateMiB: body.rateMiB)
            return EditedResponse(status: .accepted, response: job)
        }
    }

    private func volumeRef(_ context: DepotRequestContext) throws -> VolumeRef { try context.volumeRef() }

    private func snapshotRef(_ context: DepotRequestContext) throws -> SnapshotRef {
        let snap = try context.parameters.decoded("snap")
        try ObjectName.validate(snap, kind: "snapshot")
        return SnapshotRef(volume: try volumeRef(context), name: snap)
    }
}

/// `/v1/jobs[/{id}]`: list, show, cancel (DELETE).
struct JobRoutes {
    let storage: StorageManager

    func register(on group: RouterGroup<DepotRequestContext>) {
        group.get("jobs") { _, _ -> JobList in JobList(jobs: try await storage.jobs.list()) }
        group.get("jobs/:id") { request, context -> JobInfo in
            let id = try context.parameters.decoded("id")
            // `?wait=SECONDS` (0–60): answer when the job ends, or after that long.
            guard let text = request.uri.queryParameters.get("wait") else { return try await storage.jobs.show(id) }
            guard let seconds = Double(String(text)), seconds.isFinite, (0...60).contains(seconds) else {
                throw APIError(.invalidArgument("wait must be a number of seconds from 0 to 60, not '\(text)'"))
            }
            return try await storage.jobs.wait(id, atMost: .milliseconds(Int64(seconds * 1000)))
        }
        group.delete("jobs/:id") { _, context -> JobInfo in
            try await storage.jobs.cancel(try context.parameters.decoded("id"))
        }
    }
}
