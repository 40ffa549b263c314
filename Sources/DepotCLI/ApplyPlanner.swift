import DepotCore

/// Compares a spec with what depotd has and lists the steps that make them
/// agree. Apply only adds and grows: nothing the file omits is deleted, and
/// shrinking or changing a volume's provisioning or block size is refused.
public enum ApplyPlanner {
    public enum Step: Sendable, Equatable, CustomStringConvertible {
        case createPool(CreatePoolRequest)
        case updatePool(String, UpdatePoolRequest, changes: [String])
        case createVolume(pool: String, CreateVolumeRequest)
        case growVolume(VolumeRef, from: UInt64, to: UInt64)
        case createSnapshot(SnapshotRef)
        case cloneVolume(SnapshotRef, VolumeRef, full: Bool, sizeBytes: UInt64)

        public var description: String {
            switch self {
            case .createPool(let r):
                return "create pool \(r.name)" + (r.capacityBytes.map { " capacity \(ByteSize.format($0))" } ?? "")
            case .updatePool(let name, _, let changes):
                return "update pool \(name): \(changes.joined(separator: ", "))"
            case .createVolume(let pool, let r):
                return
                    "create volume \(pool)/\(r.name) \(ByteSize.format(r.sizeBytes)) \((r.provisioning ?? .thin).rawValue) block \(r.blockSize ?? 512)"
                    + (r.format == .qcow2 ? " qcow2" : "")
            case .growVolume(let ref, let from, let to):
                return "resize volume \(ref) \(ByteSize.format(from)) -> \(ByteSize.format(to))"
            case .createSnapshot(let ref):
                return "create snapshot \(ref)"
            case .cloneVolume(let source, let target, let full, _):
                return "clone \(source) as volume \(target)" + (full ? " (full copy)" : " (linked)")
            }
        }

        public static func == (a: Step, b: Step) -> Bool { a.description == b.description }
    }

    public static func plan(
        spec: ApplySpec, pools: [PoolInfo], volumes: [VolumeInfo], snapshots: [SnapshotInfo] = []
    ) throws -> [Step] {
        var steps: [Step] = []
        // Snapshots that exist or that an earlier step makes, with their sizes.
        var knownSnapshots: [String: UInt64] = Dictionary(
            snapshots.map { ("\($0.pool)/\($0.volume)@\($0.name)", $0.sizeBytes) }, uniquingKeysWith: { a, _ in a })
        var plannedSizes: [String: UInt64] = Dictionary(
            volumes.map { ("\($0.pool)/\($0.name)", $0.sizeBytes) }, uniquingKeysWith: { a, _ in a })
        var problems: [String] = []
        var seenPools = Set<String>()
        for pool in spec.pools {
            do { try ObjectName.validate(pool.name, kind: "pool") } catch {
                problems.append(error.message)
                continue
            }
            guard seenPools.insert(pool.name).inserted else {
                problems.append("pool \(pool.name) is declared twice")
                continue
            }
            if let current = pools.first(where: { $0.name == pool.name }) {
                var update = UpdatePoolRequest()
                var changes: [String] = []
                if let c = pool.capacity?.bytes, !(current.capacityExplicit && current.capacityBytes == c) {
                    update.capacityBytes = c
                    changes.append("capacity \(ByteSize.format(current.capacityBytes)) -> \(ByteSize.format(c))")
                }
                func check(
                    _ want: Double?, _ have: Double, _ label: String, _ set: (inout UpdatePoolRequest, Double) -> Void
                ) {
                    if let want, want != have {
                        set(&update, want)
                        changes.append("\(label) \(have) -> \(want)")
                    }
                }
                check(pool.maxOvercommit, current.maxOvercommit, "maxOvercommit") { $0.maxOvercommit = $1 }
                check(pool.warnPercent, current.warnPercent, "warnPercent") { $0.warnPercent = $1 }
                check(pool.criticalPercent, current.criticalPercent, "criticalPercent") { $0.criticalPercent = $1 }
                check(pool.reservedPercent, current.reservedPercent, "reservedPercent") { $0.reservedPercent = $1 }
                if let path = pool.path, path != current.path {
                    problems.append(
                        "pool \(pool.name) is at \(current.path), the file says \(path); a pool cannot move")
                }
                if !changes.isEmpty { steps.append(.updatePool(pool.name, update, changes: changes)) }
            } else {
                steps.append(
                    .createPool(
                        CreatePoolRequest(
                            name: pool.name, path: pool.path, capacityBytes: pool.capacity?.bytes,
                            maxOvercommit: pool.maxOvercommit,
                            warnPercent: pool.warnPercent, criticalPercent: pool.criticalPercent,
                            reservedPercent: pool.reservedPercent)))
            }
            var seenVolumes = Set<String>()
            for volume in pool.volumes ?? [] {
                let ref = VolumeRef(pool: pool.name, name: volume.name)
                do { try ObjectName.validate(volume.name, kind: "volume") } catch {
                    problems.append(error.message)
                    continue
                }
                guard seenVolumes.insert(volume.name).inserted else {
                    problems.append("volume \(ref) is declared twice")
                    continue
                }
                if let clone = volume.clone {
                    if volume.size != nil || volume.provisioning != nil || volume.format != nil
                        || volume.blockSize != nil
                    {
                        problems.append(
                            "volume \(ref) is a clone of \(clone): its size, provisioning, format and block size come from the snapshot"
                        )
                        continue
                    }
                    let text = clone.contains("/") ? clone : "\(pool.name)/\(clone)"
                    let source: SnapshotRef
                    do { source = try SnapshotRef(parsing: text) } catch {
                        problems.append("volume \(ref): clone \(error.message)")
                        continue
                    }
                    if volumes.contains(where: { $0.pool == pool.name && $0.name == volume.name }) {
                        // Made before (perhaps flattened since): nothing to do.
                    } else if let size = knownSnapshots[source.description] {
                        if !(volume.full ?? false), source.volume.pool != pool.name {
                            problems.append(
                                "volume \(ref): a linked clone lives in its snapshot's pool (\(source.volume.pool)); set full: true to copy it"
                            )
                        } else {
                            steps.append(.cloneVolume(source, ref, full: volume.full ?? false, sizeBytes: size))
                            plannedSizes[ref.description] = size
                        }
                    } else {
                        problems.append(
                            "volume \(ref): snapshot \(source) does not exist and no earlier entry makes it")
                    }
                } else if volume.full != nil {
                    problems.append("volume \(ref): full applies to a clone only")
                    continue
                } else if let current = volumes.first(where: { $0.pool == pool.name && $0.name == volume.name }) {
                    guard let size = volume.size else {
                        problems.append("volume \(ref): missing 'size'")
                        continue
                    }
                    if let p = volume.provisioning, p != current.provisioning {
                        problems.append(
                            "volume \(ref) is \(current.provisioning.rawValue), the file says \(p.rawValue); provisioning cannot change"
                        )
                    }
                    // A snapshot makes a raw volume's active layer qcow2: the declared format is its first one.
                    if let f = volume.format, f != current.format, current.base == nil {
                        problems.append(
                            "volume \(ref) is \(current.format.rawValue), the file says \(f.rawValue); format cannot change"
                        )
                    }
                    if let b = volume.blockSize, b != current.blockSize {
                        problems.append(
                            "volume \(ref) has block size \(current.blockSize), the file says \(b); block size cannot change"
                        )
                    }
                    if size.bytes > current.sizeBytes {
                        steps.append(.growVolume(ref, from: current.sizeBytes, to: size.bytes))
                    } else if size.bytes < current.sizeBytes {
                        problems.append(
                            "volume \(ref) is \(ByteSize.format(current.sizeBytes)), the file says \(ByteSize.format(size.bytes)); "
                                + "apply never shrinks (use depot volume resize --force)")
                    }
                    plannedSizes[ref.description] = max(size.bytes, current.sizeBytes)
                } else {
                    guard let size = volume.size else {
                        problems.append("volume \(ref): missing 'size'")
                        continue
                    }
                    steps.append(
                        .createVolume(
                            pool: pool.name,
                            CreateVolumeRequest(
                                name: volume.name, sizeBytes: size.bytes, provisioning: volume.provisioning,
                                blockSize: volume.blockSize, format: volume.format)))
                    plannedSizes[ref.description] = size.bytes
                }
                var seenSnapshots = Set<String>()
                for name in volume.snapshots ?? [] {
                    do { try ObjectName.validate(name, kind: "snapshot") } catch {
                        problems.append("volume \(ref): \(error.message)")
                        continue
                    }
                    guard seenSnapshots.insert(name).inserted else {
                        problems.append("snapshot \(ref)@\(name) is declared twice")
                        continue
                    }
                    let snapshot = SnapshotRef(volume: ref, name: name)
                    if knownSnapshots[snapshot.description] == nil {
                        steps.append(.createSnapshot(snapshot))
                        knownSnapshots[snapshot.description] = plannedSizes[ref.description] ?? 0
                    }
                }
            }
        }
        guard problems.isEmpty else {
            throw CLIFailure("the file cannot be applied:\n  " + problems.joined(separator: "\n  "))
        }
        return steps
    }
}

extension CreatePoolRequest: Equatable {
    public static func == (a: CreatePoolRequest, b: CreatePoolRequest) -> Bool {
        a.name == b.name && a.path == b.path && a.capacityBytes == b.capacityBytes && a.maxOvercommit == b.maxOvercommit
            && a.warnPercent == b.warnPercent && a.criticalPercent == b.criticalPercent
            && a.reservedPercent == b.reservedPercent
    }
}
