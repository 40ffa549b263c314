import DepotCore
import DepotExports
import DepotStorage
import Hummingbird

/// `/v1/pools` and `/v1/pools/{pool}`.
struct PoolRoutes {
    let storage: StorageManager
    let exports: ExportManager

    func register(on group: RouterGroup<DepotRequestContext>) {
        group.get("pools") { _, _ -> PoolList in
            PoolList(pools: try await storage.listPools())
        }
        group.post("pools") { request, context -> EditedResponse<PoolInfo> in
            let body = try await request.decode(as: CreatePoolRequest.self, context: context)
            return EditedResponse(status: .created, response: try await storage.createPool(body))
        }
        group.get("pools/:pool") { _, context -> PoolInfo in
            try await storage.pool(try context.parameters.decoded("pool"))
        }
        // Disk images in the pool's directory that Depot does not manage, as the last rescan found them.
        group.get("pools/:pool/files") { _, context -> ForeignDiskList in
            ForeignDiskList(files: try await storage.foreignDisks(pool: try context.parameters.decoded("pool")))
        }
        group.post("pools/:pool/rescan") { _, context -> PoolInfo in
            try await storage.rescanPool(try context.parameters.decoded("pool"))
        }
        group.patch("pools/:pool") { request, context -> PoolInfo in
            let body = try await request.decode(as: UpdatePoolRequest.self, context: context)
            return try await storage.updatePool(try context.parameters.decoded("pool"), body)
        }
        group.delete("pools/:pool") { request, context -> Response in
            let force = try QueryFlag.parse(request, "force")
            let name = try context.parameters.decoded("pool")
            try await exports.deletePool(name, force: force) { () async throws(DepotError) in
                try await storage.deletePool(name, force: force)
            }
            return Response(status: .noContent)
        }
        group.get("capacity") { _, _ -> CapacityReport in
            try await storage.capacity()
        }
    }
}

/// Boolean query parameters: absent, `true`/`1` or `false`/`0`; anything else is a 400.
enum QueryFlag {
    static func parse(_ request: Request, _ name: String) throws -> Bool {
        guard let value = request.uri.queryParameters.get(name) else { return false }
        switch value.lowercased() {
        case "", "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw DepotError.invalidArgument("query parameter '\(name)' must be true or false, got '\(value)'")
        }
    }
}
