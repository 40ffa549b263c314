import DepotCore
import DepotExports
import DepotStorage
import DepotTargets
import Hummingbird

/// `/v1/pools/{pool}/volumes[/{name}]` and `/v1/volumes`.
struct VolumeRoutes {
    let storage: StorageManager
    let targets: TargetManager
    let exports: ExportManager

    func register(on group: RouterGroup<DepotRequestContext>) {
        group.get("volumes") { request, _ -> VolumeList in
            VolumeList(
                volumes: try await storage.listVolumes(pool: request.uri.queryParameters.get("pool").map { String($0) })
            )
        }
        group.get("pools/:pool/volumes") { _, context -> VolumeList in
            VolumeList(volumes: try await storage.listVolumes(pool: try context.parameters.decoded("pool")))
        }
        group.post("pools/:pool/volumes") { request, context -> EditedResponse<VolumeInfo> in
            let body = try await request.decode(as: CreateVolumeRequest.self, context: context)
            let info = try await storage.createVolume(pool: try context.parameters.decoded("pool"), body)
            return EditedResponse(status: .created, response: info)
        }
        group.get("pools/:pool/volumes/:name") { _, context -> VolumeInfo in
            let ref = try ref(context)
            var info = try await storage.volume(ref)
            // Where it is served: its LUNs, and whether its pool is exported.
            info.luns = try await targets.lunMaps(of: ref)
            info.exported = (try? await exports.show(ref.pool)) != nil
            return info
        }
        group.patch("pools/:pool/volumes/:name") { request, context -> VolumeInfo in
            let body = try await request.decode(as: UpdateVolumeRequest.self, context: context)
            let current = try ref(context)
            guard body.sizeBytes != nil || body.name != nil else {
                throw DepotError.invalidArgument("nothing to change: give sizeBytes and/or name")
            }
            var info = try await storage.volume(current)
            if let size = body.sizeBytes {
                info = try await targets.resizeVolume(current, sizeBytes: size, force: body.force ?? false)
            }
            if let name = body.name {
                info = try await targets.renameVolume(current, to: name)
            }
            return info
        }
        // A disk image on the daemon's machine becomes the new volume NAME: 202 and the job.
        group.post("pools/:pool/volumes/:name/import") { request, context -> EditedResponse<JobStarted> in
            let body = try await request.decode(as: ImportVolumeRequest.self, context: context)
            let started = try await storage.importVolume(try ref(context), body)
            return EditedResponse(status: .accepted, response: started)
        }
        // The image as the request body, streamed (`?format=&as=&provisioning=&rateMiB=`): 202 and the job.
        group.put("pools/:pool/volumes/:name/content") { request, context -> EditedResponse<JobStarted> in
            let query = request.uri.queryParameters
            let rate = try query.get("rateMiB").map { text throws(DepotError) -> Int in
                guard let value = Int(text) else { throw .invalidArgument("rateMiB must be an integer, got '\(text)'") }
                return value
            }
            let options = ImportVolumeRequest(
                from: "-", format: query.get("format").map { String($0) },
                as: try query.get("as").map { text throws(DepotError) in try VolumeFormat(parsing: String(text)) },
                provisioning: try query.get("provisioning").map { text throws(DepotError) in
                    try Provisioning(parsing: String(text))
                }, rateMiB: rate)
            let started = try await storage.importUpload(try ref(context), options, body: request.body)
            return EditedResponse(status: .accepted, response: started)
        }
        // The volume (or `snapshot`) written as an image file in an image directory: 202 and the job.
        group.post("pools/:pool/volumes/:name/export") { request, context -> EditedResponse<JobInfo> in
            let body = try await request.decode(as: ImageExportRequest.self, context: context)
            let job = try await storage.exportImage(try ref(context), body)
            return EditedResponse(status: .accepted, response: job)
        }
        // After a failed flush the operator has checked: flushes reach the file again.
        group.post("pools/:pool/volumes/:name/clear-error") { _, context -> VolumeInfo in
            try await storage.clearError(try ref(context))
        }
        group.delete("pools/:pool/volumes/:name") { request, context -> Response in
            try await storage.deleteVolume(try ref(context), force: try QueryFlag.parse(request, "force"))
            return Response(status: .noContent)
        }
    }

    /// `GET …/export?format=raw&snapshot=S`: the content streamed raw as the
    /// answer (operator: a live volume's export takes an implicit snapshot).
    func registerStreamedExport(on group: RouterGroup<DepotRequestContext>) {
        group.get("pools/:pool/volumes/:name/export") { request, context -> Response in
            let query = request.uri.queryParameters
            let format = try query.get("format").map { text throws(DepotError) in
                try VolumeFormat(parsing: String(text))
            }
            guard format ?? .raw == .raw else {
                throw DepotError.unprocessable(
                    "a streamed export is raw for now; write qcow2 to a file (POST …/export with 'to', depot volume export --to PATH)"
                )
            }
            let source = try await storage.exportSource(
                try ref(context), snapshot: query.get("snapshot").map { String($0) })
            let reader: any ExportReader
            do { reader = try storage.exportReader(source) } catch {
                await storage.endExport(source)
                throw DepotError.internalError("opening the export's layer: \(error)")
            }
            let size = storage.exportSize(source)
            let storage = self.storage
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream", .contentLength: "\(size)"],
                body: ResponseBody { writer in
                    do {
                        var offset: UInt64 = 0
                        while offset < size {
                            let count = Int(min(1 << 20, size - offset))
                            try await writer.write(try await reader.read(offset: offset, count: count))
                            offset += UInt64(count)
                        }
                        try await writer.finish(nil)
                    } catch {
                        reader.close()
                        await storage.endExport(source)
                        throw error
                    }
                    reader.close()
                    await storage.endExport(source)
                })
        }
    }

    private func ref(_ context: DepotRequestContext) throws -> VolumeRef { try context.volumeRef() }
}

extension DepotRequestContext {
    /// The `POOL/NAME` of a `…/pools/:pool/volumes/:name…` route, validated.
    func volumeRef() throws -> VolumeRef {
        let pool = try parameters.require("pool")
        let name = try parameters.require("name")
        try ObjectName.validate(pool, kind: "pool")
        try ObjectName.validate(name, kind: "volume")
        return VolumeRef(pool: pool, name: name)
    }
}
