import DepotSCSI
import NIOCore

/// The fast lane: a plain READ or WRITE (10/16) is served on the event loop
/// straight from the bytes it arrived in, with no PDU decoded, no task, no
/// promise. Digests are checked and made here too (CRC32C with SSE4.2). A
/// read goes from the page cache (RWF_NOWAIT) into the buffer its Data-In PDU
/// is sent from; a write whose data all came as immediate data
/// goes from the receive buffer to a buffered `pwrite` (FileBlockDevice's
/// inline limit and stall back-off apply), and when it is durable (FUA,
/// WCE=0) is answered after the flush. Anything else, and any of these
/// that cannot complete at once with GOOD, is left untouched for the decoder
/// and the general path, which applies every rule of the standards. The
/// checks here only decline; they never answer.
extension ISCSIConnection {
    /// Serves the SCSI Command PDU at the front of `buffer` if it qualifies,
    /// consuming it; false leaves `buffer` as it was.
    func fastLane(_ buffer: inout ByteBuffer) -> Bool {
        guard machine.isFullFeature else { return false }
        let headerDigest = params.headerDigest ? 4 : 0
        let dataDigest = params.dataDigest
        let consumed = buffer.withUnsafeReadableBytes { raw -> Int in
            // SCSI Command, not immediate (RFC 7143 §11.3), no AHS, task attribute
            // untagged or SIMPLE (an ORDERED or HEAD OF QUEUE task must not overtake
            // or be overtaken by commands in flight: SAM-5 §8.5).
            guard raw.count >= 48 + headerDigest, raw[0] == 0x01, raw[4] == 0, raw[1] & 0x07 <= 1 else { return 0 }
            let dataLength = Int(raw[5]) << 16 | Int(raw[6]) << 8 | Int(raw[7])
            let expected = Int(raw.loadUnaligned(fromByteOffset: 20, as: UInt32.self).bigEndian)
            let isWrite: Bool
            switch raw[1] & 0xE0 {
            case 0xC0:  // F, R
                guard dataLength == 0 else { return 0 }
                isWrite = false
            case 0xA0:  // F, W, with all the data as immediate data
                guard dataLength == expected else { return 0 }
                isWrite = true
            case 0x80:  // F, no data: SYNCHRONIZE CACHE, answered after a flush
                guard dataLength == 0, expected == 0, raw[32] == 0x35 || raw[32] == 0x91 else { return 0 }
                let tag = raw.loadUnaligned(fromByteOffset: 16, as: UInt32.self).bigEndian
                let cmdSN = raw.loadUnaligned(fromByteOffset: 24, as: UInt32.self).bigEndian
                guard let lun = ReportLUNs.number(raw[8], raw[9]),
                    headerDigest == 0 || Self.digestMatches(raw, 0..<48),
                    let lu = fastLaneUnit(lun: lun, tag: tag, cmdSN: cmdSN),
                    lu.plainSync(UnsafeRawBufferPointer(rebasing: raw[32..<48]))
                else { return 0 }
                answerWhenStable(lu, header: Array(raw[0..<48]), cmdSN: cmdSN)
                return 48 + headerDigest
            default:
                return 0
            }
            let padded = (dataLength + 3) & ~3
            let dataAt = 48 + headerDigest
            let total = dataAt + padded + (dataDigest && dataLength > 0 ? 4 : 0)
            guard raw.count >= total, let lun = ReportLUNs.number(raw[8], raw[9]) else { return 0 }
            // A digest that does not match is the decoder's to report (it ends the connection, §7.8).
            if headerDigest > 0, !Self.digestMatches(raw, 0..<48) { return 0 }
            if dataDigest, dataLength > 0, !Self.digestMatches(raw, dataAt..<(dataAt + padded)) { return 0 }
            let tag = raw.loadUnaligned(fromByteOffset: 16, as: UInt32.self).bigEndian
            let cmdSN = raw.loadUnaligned(fromByteOffset: 24, as: UInt32.self).bigEndian
            let lunField = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian
            guard let lu = fastLaneUnit(lun: lun, tag: tag, cmdSN: cmdSN),
                let transfer = lu.plainTransfer(UnsafeRawBufferPointer(rebasing: raw[32..<48])),
                transfer.isWrite == isWrite, transfer.length == expected
            else { return 0 }
            var out: ByteBuffer
            if isWrite {
                guard lu.writeNow(transfer, from: UnsafeRawBufferPointer(rebasing: raw[dataAt..<(dataAt + expected)]))
                else { return 0 }
                if transfer.durable {
                    answerWhenStable(lu, header: Array(UnsafeRawBufferPointer(rebasing: raw[0..<48])), cmdSN: cmdSN)
                    return total
                }
                // SCSI Response, GOOD, no residual (RFC 7143 §11.4).
                out = channel.allocator.buffer(capacity: 48 + headerDigest)
                Self.writeFastHeader(
                    &out, opcode: 0x21, flags: 0x80, dataLength: 0, lun: 0, tag: tag, transferTag: 0,
                    headerDigest: headerDigest)
            } else {
                // One Data-In PDU with the status (§11.7.4); more than the initiator
                // takes in one PDU, or a peer not reading (4 MiB queued: the channel's
                // high water mark), is the general path's. Block-sized data needs no padding.
                guard expected <= params.initiatorMaxRecvDataSegmentLength, expected % 4 == 0, channel.isWritable else {
                    return 0
                }
                out = channel.allocator.buffer(capacity: 48 + headerDigest + expected + (dataDigest ? 4 : 0))
                Self.writeFastHeader(
                    &out, opcode: 0x25, flags: 0x81, dataLength: expected, lun: lunField, tag: tag,
                    transferTag: 0xFFFF_FFFF, headerDigest: headerDigest)
                let read = out.writeWithUnsafeMutableBytes(minimumWritableBytes: expected) { space in
                    lu.readNow(transfer, into: UnsafeMutableRawBufferPointer(rebasing: space[0..<expected]))
                        ? expected : 0
                }
                guard read == expected else { return 0 }
                if dataDigest {
                    let crc = out.withUnsafeReadableBytes {
                        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(48 + headerDigest)...]))
                    }
                    out.writeInteger(crc, endianness: .little)
                }
            }
            answerFastLane(&out, cmdSN: cmdSN, headerDigest: headerDigest > 0)
            return total
        }
        guard consumed > 0 else { return false }
        buffer.moveReaderIndex(forwardBy: consumed)
        ISCSIMetrics.fastLaneCommands.increment()
        deliverHeld()
        return true
    }

    /// Whether the CRC32C of `range` equals the 4 bytes after it (least significant first).
    private static func digestMatches(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[range]))
            == raw.loadUnaligned(fromByteOffset: range.upperBound, as: UInt32.self).littleEndian
    }

    /// A durable write the lane has written: it becomes a task like any other
    /// (in the command window, reachable by task management and by the end of
    /// the connection) and is answered GOOD once a flush that started after
    /// the write has returned (group commit, `FlushGroup`); a failed flush
    /// answers WRITE ERROR (SBC-3 §5.40: FUA, the data on the medium before
    /// GOOD). The answer is made on this event loop straight from the
    /// flush's completion (`BlockDevice.flush(then:)`): no Swift task, no
    /// continuation between the fdatasync and the SCSI Response.
    private func answerWhenStable(_ lu: LogicalUnit, header: [UInt8], cmdSN: UInt32) {
        let task = ISCSITask(
            command: SCSICommand(ISCSIFrame(bhs: header)), eventLoop: channel.eventLoop, dataOutFollows: false)
        machine.acceptFastLane(cmdSN: cmdSN)
        tasks[task.tag] = task
        machine.windowedTaskStarted()
        publishInFlight()
        let eventLoop = channel.eventLoop
        let bound = NIOLoopBound((self, task, lu), eventLoop: eventLoop)
        lu.device.flush { failure in
            eventLoop.execute {
                let (connection, task, lu) = bound.value
                connection.answerStable(task, result: failure == nil ? .ok() : lu.check(.writeError))
            }
        }
    }

    /// Answers a durable write once its flush has ended, and ends its task.
    private func answerStable(_ task: ISCSITask, result: SCSIResult) {
        let length = Int(task.command.expectedLength)
        let (pdus, _) = responsePDUs(task, result: result, expected: length, isWrite: true, needed: length)
        retire(task)
        if !task.aborted { post(pdus) }
        task.ended.succeed()
    }

    /// The LU a fast-lane command may run on: the command is the next in
    /// CmdSN order and inside the window, its tag is free, its LUN exists
    /// with no unit attention pending or announced for this nexus, and the
    /// portal group is active. Nothing changes here but the keepalive clock.
    private func fastLaneUnit(lun: UInt16, tag: UInt32, cmdSN: UInt32) -> LogicalUnit? {
        heard()
        guard machine.admitsFastLane(cmdSN: cmdSN), tasks[tag] == nil else { return nil }
        refreshLUNs()
        return scsi?.unitWithoutChecks(lun)
    }

    /// BHS of a target PDU: opcode, flags, zero response and status, data
    /// segment length, LUN, tags; the sequence numbers are stamped later.
    /// Room for the header digest is left after the BHS when it is on.
    private static func writeFastHeader(
        _ out: inout ByteBuffer, opcode: UInt8, flags: UInt8, dataLength: Int, lun: UInt64, tag: UInt32,
        transferTag: UInt32, headerDigest: Int
    ) {
        out.writeInteger(opcode)
        out.writeInteger(flags)
        out.writeInteger(UInt16(0))
        out.writeInteger(UInt32(dataLength))  // TotalAHSLength 0, then 24 bits of length
        out.writeInteger(lun)
        out.writeInteger(tag)
        out.writeInteger(transferTag)
        out.writeRepeatingByte(0, count: 24 + headerDigest)  // StatSN … residual count, header digest
    }

    /// The machine accepts the command (ExpCmdSN) and stamps StatSN, ExpCmdSN
    /// and MaxCmdSN; the answer is queued in the same turn of the event loop
    /// as every other PDU is, so StatSN leaves in order; the read batch's end
    /// flushes it.
    private func answerFastLane(_ out: inout ByteBuffer, cmdSN: UInt32, headerDigest: Bool) {
        let at = out.readerIndex
        machine.acceptFastLane(cmdSN: cmdSN)
        let sequence = machine.stampStatus()
        out.setInteger(sequence.statSN, at: at + 24)
        out.setInteger(sequence.expCmdSN, at: at + 28)
        out.setInteger(sequence.maxCmdSN, at: at + 32)
        if headerDigest {
            let crc = out.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<48])) }
            out.setInteger(crc, at: at + 48, endianness: .little)
        }
        channel.write(out, promise: nil)
        fastLaneQueued += 1
        fastLaneWrote = true
    }

    /// Flushes what the fast lane queued (end of a read batch). Until the
    /// socket has taken the batch (one promise on an empty write after it:
    /// writes complete in order) its commands count as in flight.
    func flushFastLane() {
        guard fastLaneWrote else { return }
        fastLaneWrote = false
        let batch = fastLaneQueued
        fastLaneQueued = 0
        fastLaneUnsent += batch
        publishInFlight()
        let sent = channel.eventLoop.makePromise(of: Void.self)
        sent.futureResult.assumeIsolated().whenComplete { _ in
            self.fastLaneUnsent -= batch
            self.publishInFlight()
        }
        channel.writeAndFlush(channel.allocator.buffer(capacity: 0), promise: sent)
    }
}
