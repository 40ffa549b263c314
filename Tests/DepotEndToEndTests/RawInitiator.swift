import DepotISCSI
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A minimal initiator that speaks PDUs on a blocking socket (login with
/// AuthMethod=None, no digests), for what libiscsi's API hides: pipelined
/// commands, unanswered NOP-In pings, Async Messages, task management of a
/// task still in flight, ISID reuse.
final class RawInitiator {
    private let fd: Int32
    private var buffer = ByteBufferAllocator().buffer(capacity: 1 << 16)
    private var decoder = ISCSIFrameDecoder(maxDataSegmentLength: 1 << 24)
    let isid: [UInt8]
    var cmdSN: UInt32 = 1
    var expStatSN: UInt32 = 0
    var nextTag: UInt32 = 1
    var maxCmdSN: UInt32 = 0

    /// Connects to `portal` ("host:port"); reads time out after `timeout` seconds.
    init(portal: String, isid: [UInt8] = [0x80, 0x12, 0x34, 0x56, 0x78, 0x9A], timeout: Int = 10) throws {
        let parts = portal.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw HarnessError("bad portal \(portal)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, String(parts[0]), &addr.sin_addr)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else {
            close(fd)
            throw HarnessError("connect to \(portal) failed")
        }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
        self.isid = isid
    }

    deinit { close(fd) }

    func send(_ pdu: ISCSIPDU) throws {
        var out = ByteBufferAllocator().buffer(capacity: 48 + pdu.data.count + 8)
        try ISCSIFrameEncoder().encode(data: pdu, out: &out)
        let bytes = out.readBytes(length: out.readableBytes) ?? []
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw HarnessError("send failed: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// The next PDU, or nil when the target closed the connection. Throws on timeout.
    func receive() throws -> ISCSIPDU? {
        while true {
            if let pdu = try decoder.decode(buffer: &buffer) {
                if [0x21, 0x22, 0x23, 0x24, 0x26, 0x3F, 0x32].contains(pdu.opcodeByte) || (pdu.opcodeByte == 0x25 && pdu.flags & 0x01 != 0)
                    || (pdu.opcodeByte == 0x20 && pdu.initiatorTaskTag != 0xFFFF_FFFF)
                {
                    expStatSN = pdu.u32(24) &+ 1
                }
                if pdu.opcodeByte != 0x23 { maxCmdSN = pdu.u32(32) }
                return pdu
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 65536, 0) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { throw HarnessError("timed out waiting for a PDU") }
                if errno == ECONNRESET { return nil }
                throw HarnessError("recv failed: \(String(cString: strerror(errno)))")
            }
            buffer.writeBytes(chunk[0..<n])
        }
    }

    /// Receives until a PDU matches; others are returned in `skipped`.
    func receive(until match: (ISCSIPDU) -> Bool) throws -> (ISCSIPDU, skipped: [ISCSIPDU]) {
        var skipped: [ISCSIPDU] = []
        while true {
            guard let pdu = try receive() else { throw HarnessError("connection closed; skipped \(skipped.map(\.opcodeByte))") }
            if match(pdu) { return (pdu, skipped) }
            skipped.append(pdu)
        }
    }

    /// Login straight to full feature phase (security stage with AuthMethod=None, then operational).
    func login(initiator: String, target: String, tsih: UInt16 = 0) throws -> ISCSIPDU {
        func request(csg: UInt8, nsg: UInt8, keys: [(String, String)]) throws -> ISCSIPDU {
            var pdu = ISCSIPDU(bhs: [UInt8](repeating: 0, count: 48))
            pdu.bhs[0] = 0x43
            pdu.bhs[1] = 0x80 | (csg << 2) | nsg
            pdu.bhs.replaceSubrange(8..<14, with: isid)
            pdu.put16(tsih, 14)
            pdu.initiatorTaskTag = 0
            pdu.put32(cmdSN, 24)
            pdu.put32(expStatSN, 28)
            pdu.data = Array(keys.map { "\($0.0)=\($0.1)" }.joined(separator: "\0").utf8) + [0]
            try send(pdu)
            guard let r = try receive() else { throw HarnessError("closed during login") }
            return r
        }
        let first = try request(
            csg: 0, nsg: 1, keys: [("InitiatorName", initiator), ("TargetName", target), ("SessionType", "Normal"), ("AuthMethod", "None")])
        guard first.bhs[36] == 0 else { return first }
        return try request(
            csg: 1, nsg: 3,
            keys: [("HeaderDigest", "None"), ("DataDigest", "None"), ("InitialR2T", "Yes"), ("ImmediateData", "Yes"), ("MaxRecvDataSegmentLength", "262144")])
    }

    /// A SCSI Command PDU; returns its ITT. Immediate data goes in the data segment.
    @discardableResult
    func command(_ cdb: [UInt8], read: Int = 0, write: Int = 0, data: [UInt8] = [], lun: UInt8 = 0, tag: UInt32? = nil) throws -> UInt32 {
        var pdu = ISCSIPDU(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x01
        pdu.bhs[1] = 0x80 | (read > 0 ? 0x40 : 0) | (write > 0 ? 0x20 : 0) | 0x01  // F, R, W, SIMPLE
        pdu.bhs[9] = lun
        let itt = tag ?? nextTag
        if tag == nil { nextTag += 1 }
        pdu.initiatorTaskTag = itt
        pdu.put32(UInt32(max(read, write)), 20)
        pdu.put32(cmdSN, 24)
        pdu.put32(expStatSN, 28)
        cmdSN &+= 1
        pdu.bhs.replaceSubrange(32..<(32 + cdb.count), with: cdb)
        pdu.data = data
        try send(pdu)
        return itt
    }

    /// Data-Out answering an R2T.
    func dataOut(for r2t: ISCSIPDU, bytes: [UInt8], dataSN: UInt32 = 0, final: Bool = true) throws {
        var pdu = ISCSIPDU(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x05
        pdu.bhs[1] = final ? 0x80 : 0
        pdu.initiatorTaskTag = r2t.initiatorTaskTag
        pdu.put32(r2t.u32(20), 20)
        pdu.put32(expStatSN, 28)
        pdu.put32(dataSN, 36)
        pdu.put32(r2t.u32(40), 40)
        pdu.data = bytes
        try send(pdu)
    }

    /// Task management request (RFC 7143 §11.5), sent immediate.
    func taskManagement(function: UInt8, referencedTag: UInt32 = 0xFFFF_FFFF, refCmdSN: UInt32 = 0, lun: UInt8 = 0) throws -> UInt32 {
        var pdu = ISCSIPDU(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x42
        pdu.bhs[1] = 0x80 | function
        pdu.bhs[9] = lun
        let itt = nextTag
        nextTag += 1
        pdu.initiatorTaskTag = itt
        pdu.put32(referencedTag, 20)
        pdu.put32(cmdSN, 24)
        pdu.put32(expStatSN, 28)
        pdu.put32(refCmdSN, 32)
        try send(pdu)
        return itt
    }

    /// NOP-Out answering a target's NOP-In ping (RFC 7143 §11.18).
    func answer(ping: ISCSIPDU) throws {
        var pdu = ISCSIPDU(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x40
        pdu.bhs[1] = 0x80
        pdu.initiatorTaskTag = 0xFFFF_FFFF
        pdu.put32(ping.u32(20), 20)
        pdu.put32(cmdSN, 24)
        pdu.put32(expStatSN, 28)
        try send(pdu)
    }

    func logout() throws -> ISCSIPDU? {
        var pdu = ISCSIPDU(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x46
        pdu.bhs[1] = 0x80
        pdu.initiatorTaskTag = nextTag
        nextTag += 1
        pdu.put32(cmdSN, 24)
        pdu.put32(expStatSN, 28)
        cmdSN &+= 1
        try send(pdu)
        return try receive(until: { $0.opcodeByte == 0x26 }).0
    }

    static func read10(lba: UInt32, blocks: UInt16) -> [UInt8] {
        [0x28, 0, UInt8(lba >> 24), UInt8(truncatingIfNeeded: lba >> 16), UInt8(truncatingIfNeeded: lba >> 8), UInt8(truncatingIfNeeded: lba), 0,
         UInt8(blocks >> 8), UInt8(truncatingIfNeeded: blocks), 0]
    }

    static func write10(lba: UInt32, blocks: UInt16) -> [UInt8] {
        var cdb = read10(lba: lba, blocks: blocks)
        cdb[0] = 0x2A
        return cdb
    }
}
