import DepotCore

/// Checks a plan as a whole against each pool's admission rules before
/// anything is done (dry run and real run alike): the figures of every pool
/// after each step, thick volumes against free space less the reserve, thin
/// ones against the overcommit limit — the rules depotd applies one request
/// at a time (`CapacityFigures.admit`). A new pool without an explicit
/// capacity takes its filesystem's size, which only depotd knows: its
/// volumes are checked by depotd as they are created (and undone on failure).
enum ApplyAdmission {
    static func check(_ steps: [ApplyPlanner.Step], pools: [PoolInfo]) throws {
        var figures: [String: CapacityFigures] = [:]
        for pool in pools {
            figures[pool.name] = CapacityFigures(
                capacityBytes: pool.capacityBytes, usedBytes: pool.usedBytes, provisionedBytes: pool.provisionedBytes,
                filesystemAvailableBytes: pool.freeBytes,
                thresholds: CapacityThresholds(
                    maxOvercommit: pool.maxOvercommit, warnPercent: pool.warnPercent,
                    criticalPercent: pool.criticalPercent, reservedPercent: pool.reservedPercent))
        }
        var sizes: [String: UInt64] = [:]  // current size of each planned grow's volume
        var problems: [String] = []
        for step in steps {
            switch step {
            case .createPool(let r):
                guard let capacity = r.capacityBytes else { continue }
                var thresholds = CapacityThresholds.defaults
                if let v = r.maxOvercommit { thresholds.maxOvercommit = v }
                if let v = r.reservedPercent { thresholds.reservedPercent = v }
                figures[r.name] = CapacityFigures(
                    capacityBytes: capacity, usedBytes: 0, provisionedBytes: 0, filesystemAvailableBytes: capacity,
                    thresholds: thresholds)
            case .updatePool(let name, let r, _):
                guard var f = figures[name] else { continue }
                if let c = r.capacityBytes { f.capacityBytes = c }
                if let v = r.maxOvercommit { f.thresholds.maxOvercommit = v }
                if let v = r.reservedPercent { f.thresholds.reservedPercent = v }
                figures[name] = f
            case .createVolume(let pool, let r):
                admit(
                    pool: pool, size: r.sizeBytes, provisioning: r.provisioning ?? .thin,
                    what: "create volume \(pool)/\(r.name)")
            case .growVolume(let ref, let from, let to):
                let current = sizes[ref.description] ?? from
                sizes[ref.description] = to
                admit(pool: ref.pool, size: to > current ? to - current : 0, provisioning: nil, what: "grow \(ref)")
            case .cloneVolume(let source, let target, _, let size):
                // A clone is thin (a full copy too: only the data is copied).
                admit(pool: target.pool, size: size, provisioning: .thin, what: "clone \(source) as \(target)")
            case .createSnapshot:
                // Thin volumes' snapshots take no provisioned space; depotd checks thick ones' rule.
                continue
            }
        }
        func admit(pool: String, size: UInt64, provisioning: Provisioning?, what: String) {
            guard var f = figures[pool], size > 0 else { return }
            // A grow keeps the volume's provisioning, unknown here: checked as thin, the looser rule; depotd checks the rest.
            do {
                try f.admit(size: size, provisioning: provisioning ?? .thin, pool: pool)
            } catch {
                problems.append("\(what): \(error.message)")
                return
            }
            let (provisioned, overflow) = f.provisionedBytes.addingReportingOverflow(size)
            f.provisionedBytes = overflow ? .max : provisioned
            if provisioning?.reservesSpace == true {
                f.usedBytes = f.usedBytes &+ size
                f.filesystemAvailableBytes = f.filesystemAvailableBytes > size ? f.filesystemAvailableBytes - size : 0
            }
            figures[pool] = f
        }
        if !problems.isEmpty {
            throw CLIFailure("the plan does not fit, nothing was done:\n  " + problems.joined(separator: "\n  "))
        }
    }
}
