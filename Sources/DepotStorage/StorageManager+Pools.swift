import DepotCatalog
import DepotCore
import Foundation

extension StorageManager {
    public func listPools() async throws(DepotError) -> [PoolInfo] {
        let pools = try await catalog.pools()
        let usage = Dictionary(grouping: try await catalog.volumeUsage(), by: \.poolId)
        let sharing = Self.sharing(pools)
        return pools.map { poolInfo($0, usage: usage[$0.id!] ?? [], sharing: sharing[$0.name] ?? []) }
    }

    public func pool(_ name: String) async throws(DepotError) -> PoolInfo {
        let pool = try await requirePool(name)
        return try await poolInfo(pool)
    }

    /// The pool's directory, for layers that open its files.
    public func poolPath(_ name: String) async throws(DepotError) -> String { try await requirePool(name).path }

    public func createPool(_ request: CreatePoolRequest) async throws(DepotError) -> PoolInfo {
        try await changes.run { () async throws(DepotError) -> PoolInfo in try await makePool(request) }
    }

    private func makePool(_ request: CreatePoolRequest) async throws(DepotError) -> PoolInfo {
        try ObjectName.validate(request.name, kind: "pool")
        let thresholds = try request.thresholds(over: .defaults)
        let capacity = try request.validatedCapacity()
        let path = try PoolPath.normalise(request.path ?? (poolsDirectory + "/" + request.name))
        if try await catalog.pool(named: request.name) != nil {
            throw .conflict("pool '\(request.name)' already exists")
        }
        for other in try await catalog.pools() where PoolPath.overlaps(other.path, path) {
            throw .conflict("path '\(path)' overlaps pool '\(other.name)' at '\(other.path)'")
        }
        // Directory first: a crash before the row leaves only an empty directory.
        // A given path's parent must exist unless createParents says otherwise: a
        // typo must not become a directory tree.
        let explicit = request.path != nil
        let createParents = request.createParents ?? false
        let existed: Bool = try await runIO {
            let existed = FileManager.default.fileExists(atPath: path)
            let parent = (path as NSString).deletingLastPathComponent
            if explicit, !existed, !createParents, !FileManager.default.fileExists(atPath: parent) {
                throw DepotError.unprocessable(
                    "the parent of pool path '\(path)', '\(parent)', does not exist; create it, or pass createParents (--create-parents)"
                )
            }
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw DepotError.unprocessable("cannot create pool directory '\(path)': \(error.localizedDescription)")
            }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
                throw DepotError.unprocessable("pool path '\(path)' is not a directory")
            }
            return existed
        }
        let record = PoolRecord(
            name: request.name, path: path, capacityBytes: capacity.map { Int64($0) },
            thresholds: thresholds, createdAt: Timestamp.now(), createdDirectory: !existed)
        let inserted = try await catalog.insertPool(record)
        logger.info("pool created", metadata: ["pool": "\(inserted.name)", "path": "\(path)"])
        var info = try await poolInfo(inserted)
        if info.exceedsFilesystem { info.warnings = [Self.exceedsWarning(info)] }
        return info
    }

    static func exceedsWarning(_ info: PoolInfo) -> String {
        "capacity \(ByteSize.format(info.capacityBytes)) is more than the filesystem under \(info.path) can give "
            + "(\(ByteSize.format(info.usedBytes)) used + \(ByteSize.format(info.filesystemFreeBytes)) free): the pool will be flagged EXCEEDS-FILESYSTEM "
            + "and its free space is the filesystem's"
    }

    public func updatePool(_ name: String, _ request: UpdatePoolRequest) async throws(DepotError) -> PoolInfo {
        try await changes.run { () async throws(DepotError) -> PoolInfo in try await changePool(name, request) }
    }

    private func changePool(_ name: String, _ request: UpdatePoolRequest) async throws(DepotError) -> PoolInfo {
        guard !request.isEmpty else { throw .invalidArgument("nothing to change") }
        var pool = try await requirePool(name)
        pool.thresholds = try request.thresholds(over: pool.thresholds)
        if let capacity = try request.validatedCapacity() {
            // Below what the volumes already use, the pool would be over 100 % at once.
            let used = try await figures(for: pool).usedBytes
            if capacity < used, !(request.force ?? false) {
                throw .conflict(
                    "capacity \(ByteSize.format(capacity)) is below the \(ByteSize.format(used)) the volumes of pool '\(name)' already use; "
                        + "nothing was changed (force to set it anyway)")
            }
            pool.capacityBytes = Int64(capacity)
        }
        try await catalog.updatePool(pool)
        var info = try await poolInfo(pool)
        if request.capacityBytes != nil, info.exceedsFilesystem { info.warnings = [Self.exceedsWarning(info)] }
        return info
    }

    /// Deletes a pool. With volumes it is refused (409) unless `force`, which
    /// deletes them first. Files the catalog does not know stay where they are;
    /// the directory is removed only when it is empty.
    public func deletePool(_ name: String, force: Bool) async throws(DepotError) {
        try await changes.run { () async throws(DepotError) in try await removePool(name, force: force) }
    }

    private func removePool(_ name: String, force: Bool) async throws(DepotError) {
        let pool = try await requirePool(name)
        let volumes = try await catalog.volumes(poolId: pool.id!)
        if !volumes.isEmpty {
            guard force else {
                throw .conflict("pool '\(name)' holds \(volumes.count) volume(s); delete them first or use --force")
            }
            for volume in volumes {
                try await removeVolume(VolumeRef(pool: name, name: volume.name))
            }
        }
        try await catalog.deletePool(id: pool.id!)
        let path = pool.path
        let made = pool.createdDirectory
        let leftovers: [String] = try await runIO {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            // Only a directory Depot made goes, and only empty; one the administrator gave stays.
            if entries.isEmpty, made { rmdir(path) }
            return entries
        }
        if !leftovers.isEmpty {
            logger.warning(
                "pool directory kept: it holds files Depot does not own",
                metadata: ["pool": "\(name)", "path": "\(path)", "files": "\(leftovers.sorted())"])
        }
        logger.info("pool deleted", metadata: ["pool": "\(name)"])
    }
}
