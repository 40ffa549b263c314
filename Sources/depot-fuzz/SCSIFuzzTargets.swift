@testable import DepotBackstores
@testable import DepotSCSI
import Dispatch
import Foundation

/// SCSI commands against a scratch LU (a 4 MiB thin file), as the iSCSI
/// layer hands them over: any CDB up to 16 bytes with any data-out, from
/// two I_T nexuses. Every answer must be a status a target may give
/// (SAM-5 §5.3), with well-formed sense, and data-in within MAXIMUM
/// TRANSFER LENGTH.
enum SCSIFuzzTargets {
    static let statuses: Set<UInt8> = [0x00, 0x02, 0x08, 0x18, 0x28]
    static let scratch = NSTemporaryDirectory() + "depot-fuzz-\(getpid()).img"

    /// A sequence of commands: per command a selector byte (CDB length 6,
    /// 10, 12 or 16; nexus), the CDB, a 16-bit data-out length and the data.
    static func commands(_ data: [UInt8]) {
        var input = FuzzInput(data)
        var list: [(cdb: [UInt8], dataOut: [UInt8], nexus: Int)] = []
        while !input.isEmpty, list.count < 32 {
            let selector = input.byte()
            let cdb = input.take([6, 10, 12, 16][Int(selector & 3)])
            let dataOut = input.take(input.u16())
            list.append((cdb, dataOut, Int(selector >> 2) & 1))
        }
        run(list)
    }

    /// PERSISTENT RESERVE OUT (SPC-4 §6.16): service action and type from
    /// the first bytes, the parameter list the rest; REGISTER first so the
    /// later service actions meet a registration.
    static func persistentReserveOut(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let action = input.byte() & 0x1F
        let type = input.byte()
        let list = input.rest()
        let length = UInt32(list.count)
        func cdb(_ sa: UInt8) -> [UInt8] {
            [
                0x5F, sa, type, 0, 0, UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF),
                UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), 0,
            ]
        }
        var register = [UInt8](repeating: 0, count: 24)
        register[15] = 0x2A
        run([
            ([0x5F, 0, 0, 0, 0, 0, 0, 0, 24, 0], register, 0),
            (cdb(action), list, 0), (cdb(action), list, 1),
            ([0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0], [], 1),  // PERSISTENT RESERVE IN, READ KEYS
        ])
    }

    /// EXTENDED COPY (LID1, SPC-4 §6.3): the parameter list is the input,
    /// then RECEIVE COPY RESULTS.
    static func extendedCopy(_ data: [UInt8]) {
        let length = UInt32(data.count)
        run([
            (
                [
                    0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF),
                    UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), 0, 0,
                ], data, 0
            ),
            ([0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], [], 0),
        ])
    }

    /// MODE SELECT (6) and (10) with PF (SPC-4 §6.11, §6.12), the parameter
    /// list the input; then MODE SENSE (10) of every page.
    static func modeSelect(_ data: [UInt8]) {
        let n = UInt16(min(data.count, 0xFFFF))
        let list = Array(data.prefix(Int(n)))
        run([
            ([0x15, 0x10, 0, 0, UInt8(min(list.count, 255)), 0], Array(list.prefix(255)), 0),
            ([0x55, 0x10, 0, 0, 0, 0, 0, UInt8(n >> 8), UInt8(n & 0xFF), 0], list, 1),
            ([0x5A, 0, 0x3F, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0], [], 0),
        ])
    }

    static func run(_ list: [(cdb: [UInt8], dataOut: [UInt8], nexus: Int)]) {
        guard !list.isEmpty else { return }
        Sanitize.bytesPerSecond.store(0, ordering: .relaxed)
        let done = DispatchSemaphore(value: 0)
        Task {
            defer { done.signal() }
            _ = FileManager.default.createFile(atPath: scratch, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: scratch) else { return }
            try? handle.truncate(atOffset: 4 << 20)
            try? handle.close()
            guard let device = try? FileBlockDevice(path: scratch, blockSize: 512, readOnly: false, thin: true)
            else { return }
            let lu = LogicalUnit(device: device, uuid: UUID(), name: "fuzz", readOnly: false)
            for command in list {
                check(await lu.execute(cdb: command.cdb, dataOut: command.dataOut, nexus: ITNexus("n\(command.nexus)")))
            }
            // A SANITIZE started with IMMED finishes before the file is reused.
            while lu.sanitizeActive { try? await Task.sleep(for: .milliseconds(5)) }
        }
        done.wait()
    }

    static func check(_ result: SCSIResult) {
        precondition(statuses.contains(result.status), "status \(result.status)")
        if result.status == SCSIResult.checkCondition {
            let sense = result.senseBytes ?? []
            precondition(sense.count >= 8 && [0x70, 0x72].contains(sense[0] & 0x7F), "sense \(sense)")
        }
        let dataIn = result.bulk?.readableBytes ?? result.dataIn.count
        precondition(dataIn <= BlockIO.maxTransferBytes, "\(dataIn) bytes of data-in")
    }
}
