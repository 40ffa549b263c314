import Foundation

#if DEPOT_FUZZ
    // Built with `-sanitize=fuzzer,address` (`make fuzz`): libFuzzer's main
    // calls these; DEPOT_FUZZ_TARGET names the target.
    nonisolated(unsafe) var target: ([UInt8]) -> Void = { _ in }

    @_cdecl("LLVMFuzzerInitialize")
    public func initialize(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>>
    )
        -> CInt
    {
        let name = ProcessInfo.processInfo.environment["DEPOT_FUZZ_TARGET"] ?? ""
        guard let run = FuzzTargets.named(name) else {
            let names = FuzzTargets.all.map(\.name).joined(separator: ", ")
            FileHandle.standardError.write(Data("set DEPOT_FUZZ_TARGET to one of: \(names)\n".utf8))
            exit(2)
        }
        target = run
        return 0
    }

    @_cdecl("LLVMFuzzerTestOneInput")
    public func testOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        target(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
#else
    /// Without the fuzzer: `depot-fuzz replay DIR` runs every file of
    /// DIR/TARGET/ through its target (the corpora and the crashes kept as
    /// regression inputs); `depot-fuzz list` names the targets.
    @main struct Replay {
        static func main() {
            let args = CommandLine.arguments.dropFirst()
            if args.first == "list" {
                FuzzTargets.all.forEach { print($0.name) }
                return
            }
            guard args.count == 2, args.first == "replay", let root = args.last else {
                FileHandle.standardError.write(Data("usage: depot-fuzz replay CORPUS_DIR | depot-fuzz list\n".utf8))
                exit(2)
            }
            var total = 0
            for (name, run) in FuzzTargets.all {
                let dir = root + "/" + name
                let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
                guard !files.isEmpty else {
                    FileHandle.standardError.write(Data("depot-fuzz: no corpus for \(name) in \(dir)\n".utf8))
                    exit(1)
                }
                for file in files {
                    guard let data = FileManager.default.contents(atPath: dir + "/" + file) else { continue }
                    run(Array(data))
                }
                print("depot-fuzz: \(name): \(files.count) inputs replayed")
                total += files.count
            }
            print("depot-fuzz: \(total) inputs, no crash")
        }
    }
#endif
