/// The in-process fuzz targets (`make fuzz`, `make test`'s corpus replay):
/// each takes one input and must neither trap nor break an invariant it
/// checks with `precondition` (a broken one is a crash libFuzzer keeps).
enum FuzzTargets {
    static let all: [(name: String, run: @Sendable ([UInt8]) -> Void)] = [
        ("frames", ISCSIFuzzTargets.frames),
        ("login-keys", ISCSIFuzzTargets.loginKeys),
        ("chap", ISCSIFuzzTargets.chap),
        ("scsi", SCSIFuzzTargets.commands),
        ("prout", SCSIFuzzTargets.persistentReserveOut),
        ("xcopy", SCSIFuzzTargets.extendedCopy),
        ("mode-select", SCSIFuzzTargets.modeSelect),
        ("api-json", APIFuzzTargets.requestBodies),
        ("qcow2", ImageFuzzTargets.qcow2),
        ("disk-geometry", ImageFuzzTargets.diskGeometry),
    ]

    static func named(_ name: String) -> (@Sendable ([UInt8]) -> Void)? {
        all.first { $0.name == name }?.run
    }
}

/// Input bytes taken from the front, with defaults once they run out.
struct FuzzInput {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    var isEmpty: Bool { bytes.isEmpty }
    var remaining: Int { bytes.count }

    mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }

    mutating func u16() -> Int { Int(byte()) << 8 | Int(byte()) }

    mutating func take(_ count: Int) -> [UInt8] {
        let n = min(count, bytes.count)
        defer { bytes = bytes.dropFirst(n) }
        return Array(bytes.prefix(n))
    }

    mutating func rest() -> [UInt8] { take(bytes.count) }
}
