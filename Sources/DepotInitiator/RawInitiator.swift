import DepotISCSI
import Foundation
import NIOCore
#if canImport(Glibc)
    import Glibc
#endif

/// Why the raw initiator gave up.
public struct InitiatorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A minimal initiator that speaks PDUs on a blocking socket (login with
/// AuthMethod=None, optional CRC32C digests), for what libiscsi's API hides:
/// pipelined commands, unanswered NOP-In pings, Async Messages, task
/// management of a task still in flight, ISID reuse. The end-to-end tests and
/// `depot-bench scale` drive depotd with it. One thread per initiator.
public final class RawInitiator {
    private let fd: Int32
    private var buffer = ByteBufferAllocator().buffer(capacity: 1 << 16)
    private let digestSettings = DigestSettings()
    private lazy var decoder = ISCSIFrameDecoder(maxDataSegmentLength: 1 << 24, digests: digestSettings)
    /// CRC32C header and data digests offered at login and used after it.
    public let digests: Bool
    private var digestsOn = false
    public let isid: [UInt8]
    public var cmdSN: UInt32 = 1
    public var expStatSN: UInt32 = 0
    public var nextTag: UInt32 = 1
    public var maxCmdSN: UInt32 = 0

    /// Connects to `portal` ("host:port"); reads time out after `timeout` seconds.
    /// `receiveBuffer` fixes the socket's receive buffer (SO_RCVBUF, no autotuning): a small
    /// one makes answers the test does not read back up into the target.
    public init(
        portal: String, isid: [UInt8] = [0x80, 0x12, 0x34, 0x56, 0x78, 0x9A], timeout: Int = 10, digests: Bool = false,
        receiveBuffer: Int32? = nil
    ) throws {
        let parts = portal.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw InitiatorError("bad portal \(portal)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw InitiatorError("socket failed") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, String(parts[0]), &addr.sin_addr)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard ok == 0 else {
            close(fd)
            throw InitiatorError("connect to \(portal) failed")
        }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
        self.isid = isid
        self.digests = digests
    }

    deinit { close(fd) }

    /// How long `receive()` waits before it throws.
    public func setTimeout(milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: Int((milliseconds % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Ends the connection with a TCP reset (SO_LINGER 0) rather than a FIN:
    /// what a crashed or hostile initiator leaves behind.
    public func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Sends bytes as they are (half PDUs, garbage).
    public func sendRaw(_ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL)) }
        guard n == bytes.count else { throw InitiatorError("send failed: \(String(cString: strerror(errno)))") }
    }

    /// Sends one PDU; `corruptDataDigest` flips a bit of its data digest.
    public func send(_ pdu: ISCSIFrame, corruptDataDigest: Bool = false) throws {
        var pdu = pdu
        pdu.headerDigest = digestsOn
        pdu.dataDigest = digestsOn
        var out = ByteBufferAllocator().buffer(capacity: 48 + pdu.data.count + 8)
        try ISCSIFrameEncoder().encode(data: pdu, out: &out)
        var bytes = out.readBytes(length: out.readableBytes) ?? []
        if corruptDataDigest { bytes[bytes.count - 1] ^= 0x01 }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw InitiatorError("send failed: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// The next PDU, or nil when the target closed the connection. Throws on timeout.
    public func receive() throws -> ISCSIFrame? {
        while true {
            if let pdu = try decoder.decode(buffer: &buffer) {
                if [0x21, 0x22, 0x23, 0x24, 0x26, 0x3F, 0x32].contains(pdu.opcodeByte)
                    || (pdu.opcodeByte == 0x25 && pdu.flags & 0x01 != 0)
                    || (pdu.opcodeByte == 0x20 && pdu.initiatorTaskTag != 0xFFFF_FFFF)
                {
                    expStatSN = pdu.u32(24) &+ 1
                }
                if pdu.opcodeByte != 0x23 { maxCmdSN = pdu.u32(32) }
                return pdu
            }
            // Bytes already decoded are dropped before reading more; otherwise a long
            // run keeps every byte it ever received.
            if buffer.readerIndex > 1 << 20 { buffer.discardReadBytes() }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 65536, 0) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { throw InitiatorError("timed out waiting for a PDU") }
                if errno == ECONNRESET { return nil }
                throw InitiatorError("recv failed: \(String(cString: strerror(errno)))")
            }
            buffer.writeBytes(chunk[0..<n])
        }
    }

    /// True when nothing arrives for `milliseconds`.
    public func isQuiet(milliseconds: Int32) -> Bool {
        if buffer.readableBytes > 0 { return false }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, milliseconds) == 0
    }

    /// Receives until a PDU matches; others are returned in `skipped`.
    public func receive(until match: (ISCSIFrame) -> Bool) throws -> (ISCSIFrame, skipped: [ISCSIFrame]) {
        var skipped: [ISCSIFrame] = []
        while true {
            guard let pdu = try receive() else {
                throw InitiatorError("connection closed; skipped \(skipped.map(\.opcodeByte))")
            }
            if match(pdu) { return (pdu, skipped) }
            skipped.append(pdu)
        }
    }

    /// Login straight to full feature phase (security stage with AuthMethod=None, then operational).
    /// `pipelined` PDUs go out in the same write as the final Login Request, framed with the
    /// digests that request asks for, without waiting for its answer (a hostile or eager initiator).
    public func login(
        initiator: String, target: String, tsih: UInt16 = 0, chap: (user: String, secret: String)? = nil,
        sessionType: String = "Normal",
        pipelined: [ISCSIFrame] = []
    ) throws -> ISCSIFrame {
        func request(
            csg: UInt8, nsg: UInt8, transit: Bool = true, keys: [(String, String)], pipelined: [ISCSIFrame] = []
        ) throws -> ISCSIFrame {
            var pdu = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
            pdu.bhs[0] = 0x43
            pdu.bhs[1] = (transit ? 0x80 : 0) | (csg << 2) | nsg
            pdu.bhs.replaceSubrange(8..<14, with: isid)
            pdu.put16(tsih, 14)
            pdu.initiatorTaskTag = 0
            pdu.put32(cmdSN, 24)
            pdu.put32(expStatSN, 28)
            pdu.data = Array(keys.map { "\($0.0)=\($0.1)" }.joined(separator: "\0").utf8) + [0]
            if pipelined.isEmpty {
                try send(pdu)
            } else {
                var out = ByteBufferAllocator().buffer(capacity: 4096)
                ISCSIFrameEncoder.frame(pdu, into: &out)
                for var next in pipelined {
                    next.headerDigest = digests
                    next.dataDigest = digests
                    ISCSIFrameEncoder.frame(next, into: &out)
                }
                try sendRaw(out.readBytes(length: out.readableBytes) ?? [])
            }
            guard let r = try receive() else { throw InitiatorError("closed during login") }
            return r
        }
        let names =
            [("InitiatorName", initiator)] + (sessionType == "Discovery" ? [] : [("TargetName", target)]) + [
                ("SessionType", sessionType)
            ]
        if let chap {
            // CHAP (RFC 7143 §12.1.3): offer it, ask for MD5, answer the challenge.
            let offer = try request(csg: 0, nsg: 0, transit: false, keys: names + [("AuthMethod", "CHAP")])
            guard offer.bhs[36] == 0 else { return offer }
            let challenge = try request(csg: 0, nsg: 0, transit: false, keys: [("CHAP_A", "5")])
            guard challenge.bhs[36] == 0 else { return challenge }
            let keys = TextKeys.parse(challenge.data)
            guard let id = keys.first(where: { $0.0 == "CHAP_I" }).flatMap({ UInt8($0.1) }),
                let c = keys.first(where: { $0.0 == "CHAP_C" }).flatMap({ CHAPResponse.decode($0.1) })
            else { throw InitiatorError("no CHAP challenge in \(keys)") }
            let answer = CHAPResponse.hex(CHAPResponse.md5(id: id, secret: chap.secret, challenge: c))
            let first = try request(csg: 0, nsg: 1, keys: [("CHAP_N", chap.user), ("CHAP_R", answer)])
            guard first.bhs[36] == 0 else { return first }
        } else {
            let first = try request(csg: 0, nsg: 1, keys: names + [("AuthMethod", "None")])
            guard first.bhs[36] == 0 else { return first }
        }
        let last = try request(
            csg: 1, nsg: 3,
            keys: [
                ("HeaderDigest", digests ? "CRC32C" : "None"), ("DataDigest", digests ? "CRC32C" : "None"),
                ("InitialR2T", "Yes"),
                ("ImmediateData", "Yes"), ("MaxRecvDataSegmentLength", "262144"),
            ], pipelined: pipelined)
        // Digests start with the first PDU after the final login response (RFC 7143 §13.1).
        let text = String(decoding: last.data, as: UTF8.self)
        if last.bhs[36] == 0, text.contains("HeaderDigest=CRC32C"), text.contains("DataDigest=CRC32C") {
            digestsOn = true
            digestSettings.enable(header: true, data: true)
        }
        return last
    }

    /// A SCSI Command PDU; returns its ITT. Immediate data goes in the data segment.
    @discardableResult
    public func command(
        _ cdb: [UInt8], read: Int = 0, write: Int = 0, data: [UInt8] = [], lun: UInt8 = 0, tag: UInt32? = nil,
        cmdSN explicit: UInt32? = nil,
        corruptDataDigest: Bool = false
    ) throws -> UInt32 {
        let pdu = commandPDU(cdb, read: read, write: write, data: data, lun: lun, tag: tag, cmdSN: explicit)
        try send(pdu, corruptDataDigest: corruptDataDigest)
        return pdu.initiatorTaskTag
    }

    /// A SCSI Command PDU, not sent; its tag and CmdSN are taken as `command` would.
    public func commandPDU(
        _ cdb: [UInt8], read: Int = 0, write: Int = 0, data: [UInt8] = [], lun: UInt8 = 0, tag: UInt32? = nil,
        cmdSN explicit: UInt32? = nil
    ) -> ISCSIFrame {
        var pdu = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x01
        pdu.bhs[1] = 0x80 | (read > 0 ? 0x40 : 0) | (write > 0 ? 0x20 : 0) | 0x01  // F, R, W, SIMPLE
        pdu.bhs[9] = lun
        let itt = tag ?? nextTag
        if tag == nil { nextTag += 1 }
        pdu.initiatorTaskTag = itt
        pdu.put32(UInt32(max(read, write)), 20)
        pdu.put32(explicit ?? cmdSN, 24)
        pdu.put32(expStatSN, 28)
        if explicit == nil { cmdSN &+= 1 }
        pdu.bhs.replaceSubrange(32..<(32 + cdb.count), with: cdb)
        pdu.data = data
        return pdu
    }

    /// Data-Out answering an R2T.
    public func dataOut(
        for r2t: ISCSIFrame, bytes: [UInt8], dataSN: UInt32 = 0, offset: UInt32? = nil, final: Bool = true,
        corrupt: Bool = false
    ) throws {
        var pdu = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x05
        pdu.bhs[1] = final ? 0x80 : 0
        pdu.initiatorTaskTag = r2t.initiatorTaskTag
        pdu.put32(r2t.u32(20), 20)
        pdu.put32(expStatSN, 28)
        pdu.put32(dataSN, 36)
        pdu.put32(offset ?? r2t.u32(40), 40)
        pdu.data = bytes
        try send(pdu, corruptDataDigest: corrupt)
    }

    /// Task management request (RFC 7143 §11.5), sent immediate.
    public func taskManagement(
        function: UInt8, referencedTag: UInt32 = 0xFFFF_FFFF, refCmdSN: UInt32 = 0, lun: UInt8 = 0
    ) throws -> UInt32 {
        var pdu = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
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
    public func answer(ping: ISCSIFrame) throws {
        var pdu = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x40
        pdu.bhs[1] = 0x80
        pdu.initiatorTaskTag = 0xFFFF_FFFF
        pdu.put32(ping.u32(20), 20)
        pdu.put32(cmdSN, 24)
        pdu.put32(expStatSN, 28)
        try send(pdu)
    }

    public func logout() throws -> ISCSIFrame? {
        var pdu = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
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

    public static func read10(lba: UInt32, blocks: UInt16) -> [UInt8] {
        [
            0x28, 0, UInt8(lba >> 24), UInt8(truncatingIfNeeded: lba >> 16), UInt8(truncatingIfNeeded: lba >> 8),
            UInt8(truncatingIfNeeded: lba), 0,
            UInt8(blocks >> 8), UInt8(truncatingIfNeeded: blocks), 0,
        ]
    }

    public static func write10(lba: UInt32, blocks: UInt16) -> [UInt8] {
        var cdb = read10(lba: lba, blocks: blocks)
        cdb[0] = 0x2A
        return cdb
    }
}

extension RawInitiator {
    /// WRITE(10) of whole blocks: `immediate` bytes with the command, the rest
    /// as Data-Out answering each R2T, cut at the target's 256 KiB
    /// MaxRecvDataSegmentLength. Returns the SCSI status.
    public func writeBlocks(lba: UInt32, _ bytes: [UInt8], immediate: Int = 4096) throws -> UInt8 {
        let first = min(immediate, bytes.count)
        let tag = try command(
            RawInitiator.write10(lba: lba, blocks: UInt16(bytes.count / 512)), write: bytes.count,
            data: Array(bytes[0..<first]))
        while true {
            let (pdu, _) = try receive(until: { $0.initiatorTaskTag == tag })
            if pdu.opcodeByte == 0x21 { return pdu.bhs[3] }
            guard pdu.opcodeByte == 0x31 else { continue }
            try answer(r2t: pdu, pieces: 262_144) { Array(bytes[$0]) }
        }
    }

    /// Answers an R2T with the bytes it asks for (`bytes` of each range of the
    /// whole transfer), in Data-Out PDUs of at most `pieces` bytes, DataSN from 0.
    public func answer(r2t: ISCSIFrame, pieces: Int, bytes: (Range<Int>) throws -> [UInt8]) throws {
        let start = Int(r2t.u32(40))
        let end = start + Int(r2t.u32(44))
        var offset = start
        var dataSN: UInt32 = 0
        while offset < end {
            let stop = min(offset + pieces, end)
            try dataOut(
                for: r2t, bytes: try bytes(offset..<stop), dataSN: dataSN, offset: UInt32(truncatingIfNeeded: offset),
                final: stop == end)
            dataSN &+= 1
            offset = stop
        }
    }

    /// READ(10) of `length` bytes; nil unless the status is GOOD.
    public func readBlocks(lba: UInt32, length: Int, tag: UInt32? = nil) throws -> [UInt8]? {
        let r = try run(RawInitiator.read10(lba: lba, blocks: UInt16(length / 512)), read: length, tag: tag)
        return r.status == 0 ? r.dataIn : nil
    }
}

extension RawInitiator {
    /// A logged-in session past its first TEST UNIT READY (which meets the
    /// power-on unit attention a new nexus gets); throws unless the login succeeds.
    public static func session(portal: String, isid: [UInt8], initiator: String, target: String, timeout: Int = 10)
        throws -> RawInitiator
    {
        let raw = try RawInitiator(portal: portal, isid: isid, timeout: timeout)
        let login = try raw.login(initiator: initiator, target: target)
        guard login.bhs[36] == 0 else {
            throw InitiatorError("login to \(target): status \(login.bhs[36])/\(login.bhs[37])")
        }
        _ = try raw.run([0, 0, 0, 0, 0, 0])
        return raw
    }

    /// Runs one command whose data-out fits as immediate data: status, sense, data-in.
    public func run(_ cdb: [UInt8], read: Int = 0, data: [UInt8] = [], tag: UInt32? = nil) throws -> (
        status: UInt8, sense: [UInt8], dataIn: [UInt8]
    ) {
        let tag = try command(cdb, read: read, write: data.count, data: data, tag: tag)
        var dataIn: [UInt8] = []
        while true {
            let (pdu, _) = try receive(until: { $0.initiatorTaskTag == tag })
            if pdu.opcodeByte == 0x21 { return (pdu.bhs[3], Array(pdu.data.dropFirst(2)), dataIn) }
            dataIn += pdu.data
            if pdu.flags & 0x01 != 0 { return (pdu.bhs[3], [], dataIn) }
        }
    }
}
