import NIOConcurrencyHelpers
import Synchronization

/// SANITIZE (SBC-4 §5.30): OVERWRITE, BLOCK ERASE, CRYPTOGRAPHIC ERASE and
/// EXIT FAILURE MODE. The operation belongs to the LU, not to the command:
/// it goes on after the command is aborted, a reset, or the connection
/// closing (SBC-4 §4.11.3). Meanwhile every command but INQUIRY, REPORT
/// LUNS and REQUEST SENSE gets NOT READY, SANITIZE IN PROGRESS with the
/// progress indication. There is no media encryption key to change:
/// CRYPTOGRAPHIC ERASE discards every block as BLOCK ERASE does, which on
/// a file volume leaves nothing of the old data readable through the LU.
public enum Sanitize {
    static let all: [SCSIOperation] = [
        .init(opcode: 0x48, name: "SANITIZE", cdbLength: 10, serviceActions: serviceActions) { lu, cdb, data in
            try await run(lu, cdb, data)
        }
    ]

    /// Bytes per second an overwrite may write (0: no limit); the daemon sets it.
    public static let bytesPerSecond = Atomic<Int>(128 << 20)

    /// Service actions offered (REPORT SUPPORTED OPERATION CODES lists them).
    static let serviceActions: [UInt16] = [0x01, 0x02, 0x03, 0x1F]

    /// Progress of the running operation, 0...65535 (SPC-4 §4.5.2.4.4).
    final class Progress: Sendable {
        let state = NIOLockedValueBox<(done: UInt64, total: UInt64)>((0, 1))
        var indication: UInt16 {
            state.withLockedValue { UInt16(min(65535, $0.done * 65536 / max($0.total, 1))) }
        }
    }

    static func run(_ lu: LogicalUnit, _ cdb: CDB, _ data: [UInt8]) async throws -> SCSIResult {
        let action = cdb[1] & 0x1F
        let immediate = cdb[1] & 0x80 != 0
        guard serviceActions.contains(UInt16(action)) else { return .check(.invalidField(byte: 1, bit: 4)) }
        // Byte 1 bit 6 and bytes 2-6 are reserved.
        if cdb[1] & 0x40 != 0 { return .check(.invalidField(byte: 1, bit: 6)) }
        if let byte = (2...6).first(where: { cdb[$0] != 0 }) { return .check(.invalidField(byte: byte)) }
        let length = Int(cdb.u16(7))
        let bs = lu.device.blockSize
        var pattern: [UInt8] = []
        var passes = 1
        var invert = false
        if action == 0x01 {
            // OVERWRITE parameter list (SBC-4 §5.30.3): 4 bytes and a pattern of 1...block size bytes.
            guard length > 4, length <= bs + 4, data.count >= length else { return .check(.invalidField(byte: 7)) }
            let p = CDB(data)
            passes = Int(p[0] & 0x1F)
            invert = p[0] & 0x80 != 0
            let patternLength = Int(p.u16(2))
            guard passes > 0 else { return .check(.invalidParameter(byte: 0)) }
            guard patternLength > 0, patternLength <= bs, patternLength == length - 4 else {
                return .check(.invalidField(byte: 7))
            }
            pattern = Array(data[4..<(4 + patternLength)])
        } else if length != 0 {
            return .check(.invalidField(byte: 7))
        }
        if action == 0x1F { return .ok() }  // EXIT FAILURE MODE: no operation ever fails into that mode here
        if lu.writeProtected { return .check(.writeProtected) }
        let progress = Progress()
        guard lu.beginSanitize(progress) else { return .check(.sanitizeInProgress(lu.sanitizeProgress ?? 0)) }
        let work = Task.detached {
            defer { lu.endSanitize() }
            if action == 0x01 {
                try await overwrite(lu, pattern: pattern, passes: passes, invert: invert, progress: progress)
            } else {
                try await erase(lu, progress: progress)
            }
        }
        if immediate { return .ok() }
        // Status after completion; an aborted command stops waiting (its Swift
        // task is cancelled) while the operation itself goes on.
        while lu.sanitizeProgress != nil {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await work.value
        return .ok()
    }

    static func overwrite(_ lu: LogicalUnit, pattern: [UInt8], passes: Int, invert: Bool, progress: Progress)
        async throws
    {
        let bs = lu.device.blockSize
        let chunkBlocks = max(1, (1 << 20) / bs)
        let total = lu.blockCount
        progress.state.withLockedValue { $0 = (0, total * UInt64(passes)) }
        for pass in 0..<passes {
            // INVERT: the pattern is inverted between passes, the last pass uses it as given.
            let flip = invert && (passes - 1 - pass) % 2 == 1
            var block = [UInt8](repeating: 0, count: bs)
            for i in 0..<bs { block[i] = flip ? ~pattern[i % pattern.count] : pattern[i % pattern.count] }
            let chunk = Array([[UInt8]](repeating: block, count: chunkBlocks).joined())
            let start = ContinuousClock.now
            var written: UInt64 = 0
            var lba: UInt64 = 0
            while lba < total {
                let n = min(UInt64(chunkBlocks), total - lba)
                try await lu.write(
                    offset: lba * UInt64(bs), bytes: n == UInt64(chunkBlocks) ? chunk : Array(chunk.prefix(Int(n) * bs))
                )
                lba += n
                written += n * UInt64(bs)
                progress.state.withLockedValue { $0.done += n }
                // Paced to the configured rate: ahead of it, wait.
                let rate = Sanitize.bytesPerSecond.load(ordering: .relaxed)
                if rate > 0 {
                    let due = start + .nanoseconds(Int64(Double(written) / Double(rate) * 1e9))
                    if due > .now { try await Task.sleep(until: due, clock: .continuous) }
                }
            }
            try await lu.device.flush()
        }
    }

    /// BLOCK ERASE (and CRYPTOGRAPHIC ERASE): thin volumes deallocate every
    /// block (they read as zeros, LBPRZ); thick ones are overwritten with zeros.
    static func erase(_ lu: LogicalUnit, progress: Progress) async throws {
        let bs = UInt64(lu.device.blockSize)
        if lu.device.canUnmap {
            progress.state.withLockedValue { $0 = (0, 1) }
            try await lu.unmap(offset: 0, length: lu.blockCount * bs)
            try await lu.device.flush()
            return
        }
        try await overwrite(lu, pattern: [0], passes: 1, invert: false, progress: progress)
    }
}

extension SCSISense {
    /// NOT READY, SANITIZE IN PROGRESS with the progress indication (SBC-4 §5.30.1).
    static func sanitizeInProgress(_ progress: UInt16) -> SCSISense {
        var sense = SCSISense(key: notReady, asc: 0x04, ascq: 0x1B)
        sense.progress = progress
        return sense
    }
}
