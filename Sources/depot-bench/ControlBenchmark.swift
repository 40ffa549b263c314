import DepotCLI
import DepotCore
import Foundation

/// `depot-bench control`: the control-plane benchmark behind `make bench-control`.
/// Starts a release depotd on a scratch directory and drives it through the API.
struct ControlBenchmark {
    let depotd: String
    let depot: String?
    let count: Int

    struct Row {
        var name: String
        var samples: [Double]  // seconds
        var goal: String
        var met: Bool?
    }

    func run() async throws {
        let daemon = try await ScratchDaemon(depotd: depotd)
        defer { daemon.stop() }
        let client = daemon.client
        let url = daemon.url
        let token = daemon.token

        try await Task.sleep(for: .seconds(2))
        let idleRSS = daemon.memory()
        var rows: [Row] = []

        _ = try await client.createPool(CreatePoolRequest(name: "bench"))
        var creates: [Double] = []
        let createStart = ContinuousClock.now
        for i in 0..<count {
            creates.append(
                try await timed {
                    _ = try await client.createVolume(
                        pool: "bench", CreateVolumeRequest(name: "v\(i)", sizeBytes: 1 << 30))
                })
        }
        let createTotal = seconds(ContinuousClock.now - createStart)
        rows.append(Row(name: "create thin 1 GiB (each)", samples: creates, goal: "", met: nil))
        rows.append(
            Row(name: "create \(count) thin (total)", samples: [createTotal], goal: "< 10 s", met: createTotal < 10))

        var lists: [Double] = []
        for _ in 0..<20 { lists.append(try await timed { _ = try await client.volumes(pool: "bench") }) }
        rows.append(Row(name: "list \(count) volumes", samples: lists, goal: "", met: nil))

        var caps: [Double] = []
        for _ in 0..<20 { caps.append(try await timed { _ = try await client.capacity() }) }
        rows.append(Row(name: "GET /v1/capacity", samples: caps, goal: "< 100 ms", met: percentile(caps, 0.5) < 0.1))

        if let depot {
            var cli: [Double] = []
            for _ in 0..<10 {
                cli.append(
                    try await timed {
                        let p = Process()
                        p.executableURL = URL(fileURLWithPath: depot)
                        p.arguments = ["capacity", "--api", url, "--token", token]
                        p.standardOutput = FileHandle.nullDevice
                        try p.run()
                        p.waitUntilExit()
                        guard p.terminationStatus == 0 else { throw BenchError("depot capacity failed") }
                    })
            }
            rows.append(
                Row(
                    name: "`depot capacity` (CLI process)", samples: cli, goal: "< 100 ms",
                    met: percentile(cli, 0.5) < 0.1))
        }

        let pool = try await client.pool("bench")
        if pool.freeBytes > 12 << 30 {
            let t = try await timed {
                _ = try await client.createVolume(
                    pool: "bench", CreateVolumeRequest(name: "thick10g", sizeBytes: 10 << 30, provisioning: .thick))
            }
            rows.append(Row(name: "create thick 10 GiB", samples: [t], goal: "< 1 s", met: t < 1))
            try await client.deleteVolume(VolumeRef(pool: "bench", name: "thick10g"))
        } else {
            print("note: thick 10 GiB create skipped: only \(ByteSize.format(pool.freeBytes)) free")
        }

        var deletes: [Double] = []
        for i in 0..<count {
            deletes.append(try await timed { try await client.deleteVolume(VolumeRef(pool: "bench", name: "v\(i)")) })
        }
        rows.append(Row(name: "delete volume (each)", samples: deletes, goal: "", met: nil))
        let busyRSS = daemon.memory()
        try await Task.sleep(for: .seconds(2))
        let afterRSS = daemon.memory()

        print("")
        print(
            pad("operation", 32) + lpad("n", 6) + lpad("p50", 10) + lpad("p95", 10) + lpad("max", 10)
                + "  goal        result")
        for row in rows {
            let verdict = row.met.map { $0 ? "met" : "MISSED" } ?? ""
            print(
                pad(row.name, 32) + lpad("\(row.samples.count)", 6) + lpad(ms(percentile(row.samples, 0.5)), 10)
                    + lpad(ms(percentile(row.samples, 0.95)), 10) + lpad(ms(row.samples.max() ?? 0), 10) + "  "
                    + pad(row.goal, 12) + verdict)
        }
        print("")
        print(
            "depotd RSS: idle at start \(ByteSize.format(idleRSS)) (goal < 64 MiB: \(idleRSS < 64 << 20 ? "met" : "MISSED")), "
                + "after \(count) creates+deletes \(ByteSize.format(busyRSS)), idle after \(ByteSize.format(afterRSS))")
    }

    func timed(_ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await body()
        return seconds(ContinuousClock.now - start)
    }

    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    func percentile(_ xs: [Double], _ p: Double) -> Double {
        guard !xs.isEmpty else { return 0 }
        let sorted = xs.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p + 0.5))]
    }

    func ms(_ s: Double) -> String { s >= 1 ? String(format: "%.2f s", s) : String(format: "%.2f ms", s * 1000) }
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
}
