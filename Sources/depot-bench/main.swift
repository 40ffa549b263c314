import Foundation

// depot-bench control --depotd PATH [--depot PATH] [--count N]
// depot-bench scale --depotd PATH [--targets N] [--idle N] [--soak N] [--depth N] [--seconds N]
// depot-bench snapshots --depotd PATH [--snapshots N] [--clones N]
// depot-bench fuzz-net --depotd PATH [--seconds N] [--seed N|random] [--workers N] [--rss-limit MIB]
let args = Array(CommandLine.arguments.dropFirst())
func value(_ flag: String) -> String? {
    guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
    return args[i + 1]
}
func number(_ flag: String, _ fallback: Int) -> Int { value(flag).flatMap(Int.init) ?? fallback }
let depotd = value("--depotd") ?? ".build/release/depotd"
do {
    switch args.first {
    case "control":
        try await ControlBenchmark(
            depotd: depotd,
            depot: value("--depot")
                ?? (FileManager.default.isExecutableFile(atPath: ".build/release/depot")
                    ? ".build/release/depot" : nil),
            count: number("--count", 1000)
        ).run()
    case "scale":
        try await ScaleBenchmark(
            depotd: depotd, targets: number("--targets", 256), idle: number("--idle", 64), soak: number("--soak", 64),
            depth: number("--depth", 32), seconds: number("--seconds", 600)
        ).run()
    case "snapshots":
        try await SnapshotBenchmark(
            depotd: depotd, snapshots: number("--snapshots", 20), clones: number("--clones", 50)
        ).run()
    case "fuzz-net":
        let seedText = value("--seed") ?? "random"
        guard let seed = seedText == "random" ? UInt64.random(in: 1...UInt64.max) : UInt64(seedText) else {
            throw BenchError("--seed takes a number or 'random'")
        }
        try await NetworkFuzzer(
            depotd: depotd, seconds: number("--seconds", 600), seed: seed, workers: number("--workers", 3),
            rssLimit: value("--rss-limit").flatMap(UInt64.init).map { $0 << 20 }
        ).run()
    default:
        FileHandle.standardError.write(
            Data(
                """
                usage: depot-bench control --depotd PATH [--depot PATH] [--count N]
                       depot-bench scale --depotd PATH [--targets N] [--idle N] [--soak N] [--depth N] [--seconds N]
                       depot-bench snapshots --depotd PATH [--snapshots N] [--clones N]
                       depot-bench fuzz-net --depotd PATH [--seconds N] [--seed N|random] [--workers N] [--rss-limit MIB]

                """.utf8))
        exit(64)
    }
} catch {
    FileHandle.standardError.write(Data("depot-bench: \(error)\n".utf8))
    exit(1)
}
