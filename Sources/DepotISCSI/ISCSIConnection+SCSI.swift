import Foundation
import DepotSCSI
import NIOCore

extension ISCSIConnection {
    /// SCSI Command (RFC 7143 §11.3) as one task: collect data-out (immediate
    /// data, then R2T/Data-Out bursts), run it on the LU, answer with Data-In
    /// and status, unless the task was aborted meanwhile (`launch` retires it).
    func run(_ task: ISCSITask) async throws {
        let command = task.command
        let expected = Int(command.expectedLength)
        let isWrite = command.write
        let cdb = command.cdb
        var dataOut: [UInt8] = []
        // What the CDB itself transfers; differences from the expected length are residuals (§11.4.5.1).
        let unit = confined { () -> LogicalUnit? in
            let luns = refreshLUNs()
            return task.lun.flatMap { luns[$0] }
        }
        let needed = unit?.dataOutLength(cdb: cdb)
        let wanted = min(expected, needed ?? expected)
        var dataPhaseError = false
        if isWrite, wanted > Self.maxDataOut {
            // More than MAXIMUM TRANSFER LENGTH (VPD B0h): refused before any buffer is
            // allocated for it, with INVALID FIELD IN CDB (SBC-3 §6.6.3).
            task.stopDataOut()
            try await respond(
                task, result: .check(SCSISense(key: SCSISense.illegalRequest, asc: 0x24, ascq: 0x00)),
                expected: expected, isWrite: true, needed: nil)
            return
        }
        // The buffers this command may make (data-out it collects, data-in it reads)
        // come out of the connection's budget first, and go back once it has answered.
        let share = await buffers.take((isWrite ? wanted : 0) + (unit?.dataInLength(cdb: cdb) ?? 0))
        defer { buffers.give(share) }
        if isWrite, wanted > 0 {
            // The buffer is reserved whole but filled only with the data that
            // actually arrives: untouched pages cost no memory, so a command header
            // that promises 32 MiB and sends nothing costs nothing (a zero-filled
            // buffer would have cost the 32 MiB at once), and no burst copies it.
            // Immediate data is copied once, from the received bytes into the buffer.
            let immediate = min(command.data.readableBytes, wanted)
            if immediate < wanted { dataOut.reserveCapacity(wanted) }
            command.data.withUnsafeReadableBytes { dataOut.append(contentsOf: $0.prefix(immediate)) }
            if immediate < wanted {
                guard let error = try await solicit(task, into: &dataOut, wanted: wanted) else { return }
                dataPhaseError = error
            }
        }
        confined { task.stopDataOut() }
        if dataPhaseError {
            // ABORTED COMMAND / DATA PHASE ERROR: nothing was written (SPC-4 §4.5.6).
            try await respond(
                task, result: .check(SCSISense(key: 0x0B, asc: 0x4B, ascq: 0x00)), expected: expected, isWrite: true,
                needed: nil)
            return
        }
        if confined({ task.aborted }) { return }
        let result = await execute(lun: task.lun, cdb: cdb, dataOut: dataOut)
        try await respond(task, result: result, expected: expected, isWrite: isWrite, needed: needed)
    }

    /// The most data-out one command may carry: the 32 MiB of MAXIMUM TRANSFER
    /// LENGTH, with room for a parameter list's header.
    static let maxDataOut = (32 << 20) + 4096

    /// R2T and Data-Out (RFC 7143 §11.7, §11.8), one burst of at most
    /// MaxBurstLength at a time (MaxOutstandingR2T=1). Returns whether a data
    /// phase error was seen, or nil when the task was aborted.
    private func solicit(_ task: ISCSITask, into dataOut: inout [UInt8], wanted: Int) async throws -> Bool? {
        guard var incoming = task.dataOut?.makeAsyncIterator() else { return nil }
        var offset = dataOut.count
        var r2tsn: UInt32 = 0
        var dataPhaseError = false
        while offset < wanted {
            let length = min(params.maxBurstLength, wanted - offset)
            var r2t = R2T()
            r2t.lun = task.command.lun
            r2t.tag = task.tag
            r2t.r2tSN = r2tsn
            r2t.offset = UInt32(offset)
            r2t.length = UInt32(length)
            let ttt: UInt32? = try await confined { () -> EventLoopFuture<UInt32>? in
                if task.aborted { return nil }
                let ttt = nextTransferTag
                nextTransferTag = nextTransferTag &+ 1 == 0xFFFF_FFFF ? 1 : nextTransferTag &+ 1
                r2t.transferTag = ttt
                return write([(r2t.frame, .peek)]).map { ttt }
            }?.get()
            guard let ttt else { return nil }
            r2tsn += 1
            var received = 0
            var dataSN: UInt32 = 0
            burst: while received < length {
                guard let frame = await incoming.next() else { return nil }
                let next = DataOut(frame)
                confined { task.queuedDataOut -= next.data.readableBytes }
                guard next.transferTag == ttt else {
                    // Data-Out for a transfer this task did not solicit (RFC 7143 §11.7.4).
                    try await reject(frame, reason: 0x04).get()
                    continue
                }
                // DataSN counts the Data-Out PDUs of this sequence from 0 (§11.7.5).
                if next.dataSN != dataSN {
                    dataPhaseError = true
                    try await reject(frame, reason: 0x04).get()
                    if next.final { break burst }
                    continue
                }
                dataSN &+= 1
                let at = Int(next.offset)
                guard at == offset + received, next.data.readableBytes <= length - received else {
                    // Data beyond what the R2T asked for (RFC 7143 §11.7.5), or not
                    // where the burst has got to: with DataPDUInOrder=Yes the PDUs
                    // of a sequence are at continuously increasing offsets, with no
                    // gap or overlay (§13.19). The PDU is rejected; nothing of the
                    // command is written (data phase error).
                    dataPhaseError = true
                    try await reject(frame, reason: 0x09).get()
                    if next.final { break burst }
                    continue
                }
                // One memcpy (an append of the buffer view would copy byte by byte).
                next.data.withUnsafeReadableBytes { dataOut.append(contentsOf: $0) }
                received += next.data.readableBytes
                if next.final { break burst }
            }
            // A burst ended short (F before all the solicited data) or with an
            // error: the command fails without writing, and no more is asked for,
            // so nothing can land at a shifted offset.
            if received < length { dataPhaseError = true }
            if dataPhaseError { return true }
            offset += length
        }
        return dataPhaseError
    }

    /// The target's LUN map, given to the nexus's SCSI side when the
    /// directory has a newer one (a map or size change, an ALUA state change).
    @discardableResult
    func refreshLUNs() -> [UInt16: LogicalUnit] {
        channel.eventLoop.preconditionInEventLoop()
        guard let scsi else { return [:] }
        if let targetName,
            let (generation, luns, states) = directory.luns(of: targetName, ifChangedSince: lunsGeneration)
        {
            lunsGeneration = generation
            scsi.update(
                luns: luns, portalGroupStates: states, portalGroups: directory.servedGroups(of: targetName),
                reportChanges: machine.isFullFeature)
        }
        return scsi.luns
    }

    /// One command through the nexus's SCSI side (every check, then the LU).
    func execute(lun: UInt16?, cdb: [UInt8], dataOut: [UInt8]) async -> SCSIResult {
        guard
            let scsi = confined({ () -> SCSINexus? in
                refreshLUNs()
                return scsi
            })
        else { return .check(.logicalUnitNotSupported) }
        return await scsi.execute(lun: lun, cdb: cdb, dataOut: dataOut)
    }

    /// The residual flags and count (RFC 7143 §11.4.5) when the command
    /// itself calls for `needed` bytes and the initiator expected `expected`:
    /// O (overflow) or U (underflow) and the difference. The count is a
    /// 32-bit field: a CDB may ask for more than 2^32 bytes (TRANSFER LENGTH
    /// 0xFFFFFFFF of 4 KiB blocks), so it saturates at 0xFFFFFFFF, with the O
    /// bit still saying the command wanted more than was expected. Both
    /// operands come from the peer; nothing here can trap.
    static func residual(needed: Int, expected: Int) -> (flag: UInt8, count: UInt32) {
        if needed > expected {
            let (difference, overflow) = needed.subtractingReportingOverflow(expected)
            return (0x04, overflow ? .max : UInt32(clamping: difference))
        }
        if needed < expected {
            let (difference, overflow) = expected.subtractingReportingOverflow(needed)
            return (0x02, overflow ? .max : UInt32(clamping: difference))
        }
        return (0, 0)
    }

    /// Data-In with the status in the last PDU when GOOD; else a SCSI Response
    /// carrying the sense (RFC 7143 §11.4.7). Residuals per §11.4.5. The task
    /// leaves the table in the same turn of the event loop, so its slot in the
    /// command window reopens in the MaxCmdSN this very response carries, and
    /// an abort either happened before (nothing is sent) or finds no task.
    func respond(_ task: ISCSITask, result: SCSIResult, expected: Int, isWrite: Bool, needed: Int?) async throws {
        let (pdus, large) = responsePDUs(task, result: result, expected: expected, isWrite: isWrite, needed: needed)
        let written = confined { () -> EventLoopFuture<Void>? in
            retire(task)
            if task.aborted { return nil }
            if large { return write(pdus) }
            post(pdus)
            return nil
        }
        try await written?.get()
    }

    /// The PDUs answering `task`: Data-In carrying the read data and the
    /// status in the last, or a SCSI Response; and whether they carry enough
    /// data that the caller should wait until they are written (back-pressure
    /// on a slow reader; small ones are only queued).
    func responsePDUs(
        _ task: ISCSITask, result: SCSIResult, expected: Int, isWrite: Bool, needed: Int?
    ) -> (pdus: [(ISCSIFrame, Stamp)], large: Bool) {
        let command = task.command
        if result.status != SCSIResult.good {
            logger.debug(
                "command not GOOD",
                metadata: [
                    "operation": "\(LogicalUnit.operationName(command.cdb[0]))", "status": "\(result.status)",
                    "sense": "\(result.sense.map { String(format: "%02x/%02x/%02x", $0.key, $0.asc, $0.ascq) } ?? "-")",
                ])
        }
        // Read data stays in the buffer it was read into; Data-In PDUs carry slices of it.
        var data = result.bulk ?? ByteBuffer(bytes: result.dataIn)
        var residualFlag: UInt8 = 0
        var residual: UInt32 = 0
        if isWrite, let needed {
            (residualFlag, residual) = Self.residual(needed: needed, expected: expected)
        } else if !isWrite {
            (residualFlag, residual) = Self.residual(needed: data.readableBytes, expected: expected)
            if data.readableBytes > expected, let cut = data.getSlice(at: data.readerIndex, length: expected) {
                data = cut
            }
        }
        var pdus: [(ISCSIFrame, Stamp)] = []
        if result.status == SCSIResult.good, data.readableBytes > 0 {
            let chunk = max(512, params.initiatorMaxRecvDataSegmentLength)
            var offset = 0
            var dataSN: UInt32 = 0
            while offset < data.readableBytes {
                let end = min(offset + chunk, data.readableBytes)
                let last = end == data.readableBytes
                var d = DataIn()
                d.lun = command.lun
                d.tag = command.tag
                d.dataSN = dataSN
                d.offset = UInt32(offset)
                // The last PDU ends the sequence and carries the status (§11.7.3).
                d.final = last
                d.carriesStatus = last
                d.status = result.status
                if last {
                    d.overflow = residualFlag & 0x04 != 0
                    d.underflow = residualFlag & 0x02 != 0
                    d.residual = residual
                }
                d.data = data.getSlice(at: data.readerIndex + offset, length: end - offset) ?? ByteBuffer()
                pdus.append((d.frame, last ? .status : .window))
                dataSN += 1
                offset = end
            }
        } else {
            var r = SCSIResponse()
            r.response = 0x00  // command completed at target
            r.status = result.status
            r.tag = command.tag
            r.overflow = residualFlag & 0x04 != 0
            r.underflow = residualFlag & 0x02 != 0
            r.residual = residual
            r.sense = result.senseBytes ?? []
            pdus.append((r.frame, .status))
        }
        return (pdus, data.readableBytes > 65_536)
    }
}
