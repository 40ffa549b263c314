import DepotCore
import DepotStorage
import Hummingbird
import NIOConcurrencyHelpers
import Prometheus

/// `/metrics`: Prometheus text exposition. Pool gauges are refreshed from
/// live figures at each scrape; gauges of deleted pools are unregistered.
final class PoolMetrics: Sendable {
    private struct Gauges: Sendable {
        var all: [Prometheus.Gauge]
    }

    let registry: PrometheusCollectorRegistry
    private let known = NIOLockedValueBox<[String: Gauges]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func refresh(
        _ pools: [PoolInfo], snapshots: [String: (count: Int, bytes: UInt64)] = [:], inError: [String: Int] = [:]
    ) {
        known.withLockedValue { known in
            let names = Set(pools.map(\.name))
            for (name, gauges) in known where !names.contains(name) {
                gauges.all.forEach(registry.unregisterGauge)
                known[name] = nil
            }
            for pool in pools {
                let labels = [("pool", pool.name)]
                func gauge(_ name: String, _ help: String, _ value: Double, extra: [(String, String)] = [])
                    -> Prometheus.Gauge
                {
                    let g = registry.makeGauge(name: name, labels: labels + extra, help: help)
                    g.set(value)
                    return g
                }
                var all = [
                    gauge("depot_pool_capacity_bytes", "Pool capacity in bytes", Double(pool.capacityBytes)),
                    gauge(
                        "depot_pool_used_bytes", "Bytes allocated by the pool's volume files", Double(pool.usedBytes)),
                    gauge(
                        "depot_pool_provisioned_bytes", "Sum of the pool's virtual volume sizes",
                        Double(pool.provisionedBytes)),
                    gauge("depot_pool_free_bytes", "Free bytes in the pool", Double(pool.freeBytes)),
                    gauge("depot_pool_overcommit_ratio", "Provisioned bytes over capacity", pool.overcommitRatio),
                    gauge("depot_pool_used_percent", "Used bytes as a percentage of capacity", pool.usedPercent),
                    gauge(
                        "depot_pool_overprovisioned", "1 when provisioned exceeds capacity",
                        pool.overprovisioned ? 1 : 0),
                    gauge("depot_pool_volumes", "Number of volumes in the pool", Double(pool.volumeCount)),
                    gauge(
                        "depot_pool_volumes_in_error",
                        "Volumes whose flush failed (state error) until depot volume clear-error",
                        Double(inError[pool.name] ?? 0)),
                    gauge(
                        "depot_pool_snapshots", "Number of snapshots in the pool",
                        Double(snapshots[pool.name]?.count ?? 0)),
                    gauge(
                        "depot_pool_snapshot_bytes", "Bytes allocated by the pool's snapshot layers",
                        Double(snapshots[pool.name]?.bytes ?? 0)),
                ]
                for state in [CapacityState.ok, .warning, .critical] {
                    all.append(
                        gauge(
                            "depot_pool_state", "1 for the pool's current capacity state", pool.state == state ? 1 : 0,
                            extra: [("state", state.rawValue)]))
                }
                known[pool.name] = Gauges(all: all)
            }
        }
    }
}

struct MetricsRoute {
    let storage: StorageManager
    let metrics: PoolMetrics

    func register(on group: RouterGroup<DepotRequestContext>) {
        group.get("metrics") { _, _ -> Response in
            metrics.refresh(
                try await storage.listPools(), snapshots: try await storage.snapshotUsage(),
                inError: try await storage.volumesInError())
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers,
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
    }
}
