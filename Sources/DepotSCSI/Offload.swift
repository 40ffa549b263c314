import Foundation
import NIOConcurrencyHelpers

/// Windows ODX (SBC-3 §4.28): POPULATE TOKEN makes a ROD token standing for
/// ranges of one LU; WRITE USING TOKEN copies what it stands for into ranges
/// of any LU of the daemon the nexus reaches. Tokens are change vulnerable
/// (ROD type 00800001h): a write to their ranges cancels them, as does
/// their inactivity timeout. The block device zero ROD token writes zeros.
enum Offload {
    static let maxRanges = 64
    static let defaultInactivity: UInt32 = 60
    static let maxInactivity: UInt32 = 3600
    static let maxTokenBytes: UInt64 = 1 << 30
    static let tokenLength = 512
    static let changeVulnerable: UInt32 = 0x0080_0001
    static let zeroToken: UInt32 = 0xFFFF_0001

    struct Range {
        let lba: UInt64
        let blocks: UInt64
    }

    final class Token: @unchecked Sendable {
        let bytes: [UInt8]
        weak var source: LogicalUnit?
        let ranges: [Range]
        let inactivity: Duration
        /// Under `store`'s lock.
        var lastUse: ContinuousClock.Instant
        var cancelled = false

        init(bytes: [UInt8], source: LogicalUnit, ranges: [Range], inactivity: Duration) {
            self.bytes = bytes
            self.source = source
            self.ranges = ranges
            self.inactivity = inactivity
            self.lastUse = .now
        }
    }

    /// Live tokens of the daemon, by their 512 bytes.
    static let store = NIOLockedValueBox<[[UInt8]: Token]>([:])
    static let tokensKept = 1024

    /// Cancels the tokens whose ranges a write to `lu` overlaps; the caller
    /// checked `lu.liveTokens` first, so writes pay nothing while none exist.
    static func noteWrite(_ lu: LogicalUnit, offset: UInt64, length: UInt64) {
        let bs = UInt64(lu.device.blockSize)
        let first = offset / bs
        let end = (offset + length + bs - 1) / bs
        store.withLockedValue { tokens in
            for token in tokens.values where token.source === lu && !token.cancelled {
                if token.ranges.contains(where: { $0.lba < end && first < $0.lba + $0.blocks }) {
                    token.cancelled = true
                }
            }
            recount(lu, in: tokens)
        }
    }

    /// Sets `lu.liveTokens` to its usable tokens; under `store`'s lock, so a
    /// token being made is never missed.
    static func recount(_ lu: LogicalUnit, in tokens: [[UInt8]: Token]) {
        let now = ContinuousClock.now
        let live = tokens.values.filter { $0.source === lu && !$0.cancelled && now - $0.lastUse < $0.inactivity }.count
        lu.liveTokens.store(live, ordering: .relaxed)
    }

    /// Range descriptors (SBC-3 §5.13.2.2): LBA, number of blocks.
    static func ranges(_ p: CDB, at start: Int, length: Int, lu: LogicalUnit) throws(ExtendedCopy.Failure) -> [Range] {
        // The descriptors lie inside the parameter list that arrived (SBC-3 §5.13.2.1).
        guard length % 16 == 0, start + length <= p.bytes.count else { throw .listLength }
        // TOO MANY... as INVALID FIELD IN PARAMETER LIST
        guard length / 16 <= maxRanges else { throw .illegal(0x26, 0x00) }
        var ranges: [Range] = []
        for at in stride(from: start, to: start + length, by: 16) {
            let range = Range(lba: p.u64(at), blocks: UInt64(p.u32(at + 8)))
            let (end, overflow) = range.lba.addingReportingOverflow(range.blocks)
            guard !overflow, end <= lu.blockCount else { throw .illegal(0x21, 0x00) }  // LBA OUT OF RANGE
            if range.blocks > 0 { ranges.append(range) }
        }
        return ranges
    }

    /// The parameter list of a token command (LIST IDENTIFIER in CDB bytes
    /// 6-9, PARAMETER LIST LENGTH in 10-13) and its copy record, marked running.
    static func begin(_ lu: LogicalUnit, _ cdb: CDB, _ data: [UInt8], minimum: Int) -> Result<
        (CDB, CopyResults.Key), PRFailure
    > {
        let length = Int(cdb.u32(10))
        guard length >= minimum, data.count >= length else { return .failure(.parameterListLength) }
        let key = CopyResults.Key(nexus: LogicalUnit.context.nexus, listID: cdb.u32(6))
        guard lu.copyResults.begin(key) else { return .failure(PRFailure(result: .check(.operationInProgress))) }
        return .success((CDB(Array(data.prefix(length))), key))
    }

    /// POPULATE TOKEN (SBC-3 §5.13).
    static func populateToken(_ lu: LogicalUnit, _ cdb: CDB, _ data: [UInt8]) async throws -> SCSIResult {
        let (p, key): (CDB, CopyResults.Key)
        switch begin(lu, cdb, data, minimum: 16) {
        case .success(let started): (p, key) = started
        case .failure(let refusal): return refusal.result
        }
        do {
            // IMMED: not offered
            if p[2] & 0x01 != 0 { throw ExtendedCopy.Failure(sense: .invalidParameter(byte: 2, bit: 0)) }
            let rodType = p[2] & 0x02 != 0 ? p.u32(8) : 0
            guard rodType == 0 || rodType == 0x0080_0000 || rodType == changeVulnerable else {
                // UNSUPPORTED TOKEN TYPE
                throw ExtendedCopy.Failure(sense: SCSISense(key: SCSISense.illegalRequest, asc: 0x23, ascq: 0x01))
            }
            let timeout = p.u32(4)
            guard timeout <= maxInactivity else { throw ExtendedCopy.Failure(sense: .invalidParameter(byte: 4)) }
            let ranges = try ranges(p, at: 16, length: Int(p.u16(14)), lu: lu)
            let blocks = ranges.reduce(0) { $0 + $1.blocks }
            guard blocks * UInt64(lu.device.blockSize) <= maxTokenBytes else {
                throw ExtendedCopy.Failure(sense: .invalidParameter(byte: 14))
            }
            let token = Token(
                bytes: makeToken(lu, bytes: blocks * UInt64(lu.device.blockSize)), source: lu, ranges: ranges,
                inactivity: .seconds(Int(timeout == 0 ? defaultInactivity : timeout)))
            store.withLockedValue { tokens in
                // Expired ones go first; past the bound, the oldest.
                let now = ContinuousClock.now
                tokens = tokens.filter {
                    !$0.value.cancelled && now - $0.value.lastUse < $0.value.inactivity && $0.value.source != nil
                }
                if tokens.count >= tokensKept, let oldest = tokens.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                    tokens[oldest.key] = nil
                }
                tokens[token.bytes] = token
                recount(lu, in: tokens)
            }
            lu.copyResults.finish(
                key,
                CopyResults.Status(
                    failed: nil, segments: ranges.count, bytes: 0, action: 0x10, token: token.bytes, blocks: blocks))
            return .ok()
        } catch let failure as ExtendedCopy.Failure {
            lu.copyResults.finish(key, CopyResults.Status(failed: failure.sense, segments: 0, bytes: 0, action: 0x10))
            return .check(failure.sense)
        }
    }

    /// A ROD token (SPC-4 §7.6.4): type, length, an identifier, the creator
    /// LU's identification descriptor, bytes represented, and 32 random bytes
    /// so that tokens cannot be guessed.
    static func makeToken(_ lu: LogicalUnit, bytes: UInt64) -> [UInt8] {
        var t = [UInt8](repeating: 0, count: tokenLength)
        t.put32(changeVulnerable, at: 0)
        t.put16(UInt16(tokenLength - 8), at: 6)
        t.put64(UInt64.random(in: 1...UInt64.max), at: 8)
        let naa = lu.naaDesignator
        t[16] = 0xE4
        t[20] = 0x01  // binary code set
        t[21] = 0x03  // NAA, associated with the LU
        t[23] = UInt8(naa.count)
        t.replaceSubrange(24..<(24 + naa.count), with: naa)
        t[45] = UInt8(truncatingIfNeeded: lu.device.blockSize >> 16)
        t[46] = UInt8(truncatingIfNeeded: lu.device.blockSize >> 8)
        t[47] = UInt8(truncatingIfNeeded: lu.device.blockSize)
        t.put64(bytes, at: 56)  // NUMBER OF BYTES REPRESENTED (low half of 16 bytes)
        for i in 64..<96 { t[i] = UInt8.random(in: 0...255) }
        return t
    }

    /// WRITE USING TOKEN (SBC-3 §5.47).
    static func writeUsingToken(_ lu: LogicalUnit, _ cdb: CDB, _ data: [UInt8]) async throws -> SCSIResult {
        let (p, key): (CDB, CopyResults.Key)
        switch begin(lu, cdb, data, minimum: 536) {
        case .success(let started): (p, key) = started
        case .failure(let refusal): return refusal.result
        }
        var written: UInt64 = 0
        do {
            if lu.writeProtected { throw ExtendedCopy.Failure(sense: .writeProtected) }
            if p[2] & 0x01 != 0 { throw ExtendedCopy.Failure(sense: .invalidParameter(byte: 2, bit: 0)) }
            let offsetIntoROD = p.u64(8)
            let tokenBytes = Array(p.bytes[16..<(16 + tokenLength)])
            let destination = try ranges(p, at: 536, length: Int(p.u16(534)), lu: lu)
            if CDB(tokenBytes).u32(0) == zeroToken {
                // Block device zero ROD token: the ranges read as zeros afterwards.
                for r in destination {
                    try await zero(lu, lba: r.lba, blocks: r.blocks)
                    written += r.blocks
                }
            } else {
                let (source, ranges) = try redeem(tokenBytes)
                // A token is redeemed only by a nexus that may reach its source LU (the
                // copy scope of EXTENDED COPY): to any other it is unknown (23h/04h).
                guard LogicalUnit.context.copyTargets(source.naaDesignator) === source else {
                    throw ExtendedCopy.Failure(sense: SCSISense(key: SCSISense.illegalRequest, asc: 0x23, ascq: 0x04))
                }
                guard source.device.blockSize == lu.device.blockSize else {
                    throw ExtendedCopy.Failure(sense: SCSISense(key: SCSISense.illegalRequest, asc: 0x23, ascq: 0x00))
                }
                written = try await copy(from: source, ranges, skipping: offsetIntoROD, to: lu, destination)
            }
            lu.copyResults.finish(
                key,
                CopyResults.Status(failed: nil, segments: destination.count, bytes: 0, action: 0x11, blocks: written))
            return .ok()
        } catch let failure as ExtendedCopy.Failure {
            lu.copyResults.finish(
                key, CopyResults.Status(failed: failure.sense, segments: 0, bytes: 0, action: 0x11, blocks: written))
            return .check(failure.sense)
        }
    }

    /// The token's source and ranges, or why it cannot be used
    /// (INVALID TOKEN OPERATION, SBC-3 §5.47.1).
    static func redeem(_ bytes: [UInt8]) throws(ExtendedCopy.Failure) -> (LogicalUnit, [Range]) {
        let found = store.withLockedValue { tokens -> (LogicalUnit, [Range])? in
            guard let token = tokens[bytes], !token.cancelled, ContinuousClock.now - token.lastUse < token.inactivity,
                let source = token.source
            else { return nil }
            token.lastUse = .now
            return (source, token.ranges)
        }
        guard let found else {
            // TOKEN UNKNOWN for what we never made; cancelled or expired ones alike (23h/04h… 08h).
            let known = store.withLockedValue { $0[bytes] != nil }
            throw .illegal(0x23, known ? 0x08 : 0x04)
        }
        return found
    }

    /// Copies the token's blocks after `skip` into the destination ranges in
    /// order; returns the blocks written.
    static func copy(
        from source: LogicalUnit, _ sourceRanges: [Range], skipping skip: UInt64, to lu: LogicalUnit,
        _ destination: [Range]
    ) async throws -> UInt64 {
        var pieces: [Range] = []
        var toSkip = skip
        for r in sourceRanges {
            if toSkip >= r.blocks {
                toSkip -= r.blocks
                continue
            }
            pieces.append(Range(lba: r.lba + toSkip, blocks: r.blocks - toSkip))
            toSkip = 0
        }
        var written: UInt64 = 0
        var i = 0
        for d in destination {
            var at = d.lba
            var left = d.blocks
            while left > 0, i < pieces.count {
                let n = min(left, pieces[i].blocks)
                _ = try await copyBlocks(from: source, at: pieces[i].lba, to: lu, at: at, blocks: n)
                pieces[i] = Range(lba: pieces[i].lba + n, blocks: pieces[i].blocks - n)
                if pieces[i].blocks == 0 { i += 1 }
                at += n
                left -= n
                written += n
            }
        }
        return written
    }

    /// Writes zeros: by deallocating where the LU can (LBPRZ), else in 1 MiB writes.
    static func zero(_ lu: LogicalUnit, lba: UInt64, blocks: UInt64) async throws {
        let bs = UInt64(lu.device.blockSize)
        if lu.device.canUnmap { return try await lu.unmap(offset: lba * bs, length: blocks * bs) }
        let chunk = max(1, (1 << 20) / bs)
        var done: UInt64 = 0
        while done < blocks {
            let n = min(chunk, blocks - done)
            try await lu.write(offset: (lba + done) * bs, bytes: [UInt8](repeating: 0, count: Int(n * bs)))
            done += n
        }
    }

    /// The copy engine behind EXTENDED COPY and WRITE USING TOKEN: 1 MiB at a
    /// time; unallocated source extents become deallocated destination
    /// extents where the destination is thin, so clones stay thin.
    static func copyBlocks(
        from source: LogicalUnit, at sourceLBA: UInt64, to destination: LogicalUnit, at destinationLBA: UInt64,
        blocks: UInt64
    ) async throws -> UInt64 {
        let bs = UInt64(source.device.blockSize)
        guard bs == UInt64(destination.device.blockSize) else { throw ExtendedCopy.Failure.aborted(0x00, 0x00) }
        for (lu, lba) in [(source, sourceLBA), (destination, destinationLBA)] {
            let (end, overflow) = lba.addingReportingOverflow(blocks)
            // Outside a copy target: COPY ABORTED (SPC-4 §6.4.6.1).
            if overflow || end > lu.blockCount { throw ExtendedCopy.Failure.aborted(0x00, 0x00) }
        }
        let chunk = max(1, (1 << 20) / bs)
        var done: UInt64 = 0
        while done < blocks {
            var n = min(chunk, blocks - done)
            let from = (sourceLBA + done) * bs
            let to = (destinationLBA + done) * bs
            if destination.device.canUnmap, source.device.canUnmap {
                let (mapped, extent) = try await source.device.allocation(at: from)
                if !mapped {
                    n = min(blocks - done, max(1, extent / bs))
                    try await destination.unmap(offset: to, length: n * bs)
                    done += n
                    continue
                }
            }
            let bytes = try await source.device.read(offset: from, length: Int(n * bs))
            try await destination.write(offset: to, bytes: bytes)
            done += n
        }
        return blocks * bs
    }

    /// RECEIVE ROD TOKEN INFORMATION (SBC-3 §5.16): the outcome of POPULATE
    /// TOKEN (with the token) or WRITE USING TOKEN for a list identifier.
    static func receiveTokenInformation(_ lu: LogicalUnit, _ cdb: CDB, nexus: ITNexus) -> SCSIResult {
        let allocation = Int(cdb.u32(10))
        let (running, status) = lu.copyResults.take(CopyResults.Key(nexus: nexus, listID: cdb.u32(2)))
        guard !running, let status, status.action == 0x10 || status.action == 0x11 else {
            return .check(.invalidField(byte: 2))
        }
        // TRANSFER COUNT UNITS F1h: logical blocks.
        var d = CopyResults.lid4Status(status, units: 0xF1, count: status.blocks)
        if let token = status.token {
            var list = [UInt8](repeating: 0, count: 6)
            list.put32(UInt32(2 + token.count), at: 0)
            d += list + token
        } else {
            d += [0, 0, 0, 0]
        }
        d.put32(UInt32(d.count - 4), at: 0)
        return .ok(d.allocated(allocation))
    }
}
