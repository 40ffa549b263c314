import Foundation

// depot-bench control --depotd PATH [--depot PATH] [--count N]
let args = Array(CommandLine.arguments.dropFirst())
func value(_ flag: String) -> String? {
    guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
    return args[i + 1]
}
guard args.first == "control" else {
    FileHandle.standardError.write(Data("usage: depot-bench control --depotd PATH [--depot PATH] [--count N]\n".utf8))
    exit(64)
}
let benchmark = ControlBenchmark(
    depotd: value("--depotd") ?? ".build/release/depotd",
    depot: value("--depot") ?? (FileManager.default.isExecutableFile(atPath: ".build/release/depot") ? ".build/release/depot" : nil),
    count: Int(value("--count") ?? "1000") ?? 1000)
do {
    try await benchmark.run()
} catch {
    FileHandle.standardError.write(Data("depot-bench: \(error)\n".utf8))
    exit(1)
}
