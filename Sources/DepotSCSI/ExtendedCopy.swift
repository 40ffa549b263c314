/// EXTENDED COPY(LID1) (SPC-4 §6.5), the VAAI "full copy", and EXTENDED
/// COPY(LID4) (SPC-4 §6.4) with its 4-byte list identifier: block-to-block
/// segments between any LUs the nexus can reach, named by identification
/// descriptor target descriptors (E4h) carrying the LU's NAA designator.
/// The copy runs inside the command: status is GOOD once every segment is
/// written; RECEIVE COPY RESULTS reports it afterwards.
enum ExtendedCopy {
    /// Limits reported by RECEIVE COPY RESULTS, OPERATING PARAMETERS.
    static let maxTargetDescriptors = 16
    static let maxSegmentDescriptors = 16
    static let maxDescriptorListLength = 1024
    static let maxSegmentBytes: UInt32 = 64 << 20
    /// Descriptor type codes implemented: block→block segment, identification target.
    static let implementedDescriptors: [UInt8] = [0x02, 0xE4]

    static let all: [SCSIOperation] = [
        .init(
            opcode: 0x83, name: "THIRD-PARTY COPY OUT", cdbLength: 16, serviceActions: [0x00, 0x01, 0x10, 0x11],
            needsContext: true
        ) { lu, cdb, data in
            switch cdb[1] & 0x1F {
            case 0x00, 0x01: return try await extendedCopy(lu, cdb, data)
            case 0x10: return try await Offload.populateToken(lu, cdb, data)
            case 0x11: return try await Offload.writeUsingToken(lu, cdb, data)
            default: return .check(.invalidField(byte: 1, bit: 4))
            }
        },
        .init(
            opcode: 0x84, name: "THIRD-PARTY COPY IN", cdbLength: 16, serviceActions: [0x00, 0x03, 0x04, 0x05, 0x07],
            needsContext: true
        ) { lu, cdb, _ in
            CopyResults.receive(lu, cdb)
        },
    ]

    struct Failure: Error {
        let sense: SCSISense
        static func illegal(_ asc: UInt8, _ ascq: UInt8) -> Failure {
            Failure(sense: SCSISense(key: SCSISense.illegalRequest, asc: asc, ascq: ascq))
        }
        static func aborted(_ asc: UInt8, _ ascq: UInt8) -> Failure {
            Failure(sense: SCSISense(key: copyAborted, asc: asc, ascq: ascq))
        }
        static let listLength = Failure(sense: .parameterListLengthError)
        static let unreachable = aborted(0x0D, 0x02)  // COPY TARGET DEVICE NOT REACHABLE
    }

    static let copyAborted: UInt8 = 0x0A

    /// Where the two parameter list formats keep their fields: LID1 (SPC-4
    /// §6.5.3) and LID4 (SPC-4 §6.4.2, table 126: a 48-byte header whose
    /// bytes 16-47 read as one invalid target descriptor to an SPC-3 parser).
    struct Layout: Sendable {
        let header: Int
        let listID: @Sendable (CDB) -> UInt32
        let targetsLength: @Sendable (CDB) -> Int
        let segmentsLength: @Sendable (CDB) -> Int
        let inlineLength: @Sendable (CDB) -> Int

        static let lid1 = Layout(
            header: 16, listID: { UInt32($0[0]) }, targetsLength: { Int($0.u16(2)) },
            segmentsLength: { Int($0.u32(8)) },
            inlineLength: { Int($0.u32(12)) })
        static let lid4 = Layout(
            header: 48, listID: { $0.u32(20) }, targetsLength: { Int($0.u16(42)) }, segmentsLength: { Int($0.u16(44)) },
            inlineLength: { Int($0.u16(46)) })
    }

    static func extendedCopy(_ lu: LogicalUnit, _ cdb: CDB, _ data: [UInt8]) async throws -> SCSIResult {
        let lid4 = cdb[1] & 0x1F == 0x01
        let layout = lid4 ? Layout.lid4 : Layout.lid1
        let length = Int(cdb.u32(10))
        // An empty parameter list copies nothing (SPC-4 §6.4.1).
        guard length > 0 else { return .ok() }
        guard data.count >= length, length >= layout.header else { return .check(.parameterListLengthError) }
        let p = CDB(Array(data.prefix(length)))
        if lid4 {
            // PARAMETER LIST FORMAT 01h, the header CSCD descriptor (length 20h, type FFh).
            guard p[0] == 0x01 else { return .check(.invalidParameter(byte: 0)) }
            guard p.u16(2) == 0x20 else { return .check(.invalidParameter(byte: 2)) }
            guard p[16] == 0xFF else { return .check(.invalidParameter(byte: 16)) }
            // IMMED (a copy in the background) and G_SENSE (sense with GOOD) are not offered.
            if p[15] & 0x03 != 0 { return .check(.invalidParameter(byte: 15, bit: p[15] & 0x01 != 0 ? 0 : 1)) }
        }
        let usage = (p[1] >> 3) & 0x03
        let nexus = LogicalUnit.context.nexus
        // LIST ID USAGE 11b: no list identifier and nothing held (SPC-4 table 111).
        let record = usage == 0x03 ? nil : CopyResults.Key(nexus: nexus, listID: layout.listID(p))
        if let record, !lu.copyResults.begin(record) {
            return .check(.operationInProgress)
        }
        var processed = 0
        var bytes: UInt64 = 0
        do {
            let (targets, segments) = try parse(p, length: length, layout: layout)
            for segment in segments {
                bytes += try await copy(segment, targets: targets)
                processed += 1
            }
            if let record {
                lu.copyResults.finish(
                    record,
                    CopyResults.Status(failed: nil, segments: processed, bytes: bytes, action: lid4 ? 0x01 : 0x00))
            }
            return .ok()
        } catch let failure as Failure {
            if let record {
                lu.copyResults.finish(
                    record,
                    CopyResults.Status(
                        failed: failure.sense, segments: processed, bytes: bytes, action: lid4 ? 0x01 : 0x00))
            }
            return .check(failure.sense)
        } catch {
            if let record {
                lu.copyResults.finish(
                    record,
                    CopyResults.Status(
                        failed: .writeError, segments: processed, bytes: bytes, action: lid4 ? 0x01 : 0x00))
            }
            throw error
        }
    }

    struct Segment {
        let source: Int
        let destination: Int
        let blocks: UInt64
        let sourceLBA: UInt64
        let destinationLBA: UInt64
    }

    /// Parameter list (SPC-4 §6.4.3): header, target (CSCD) descriptors, segment descriptors.
    static func parse(_ p: CDB, length: Int, layout: Layout = .lid1) throws(Failure) -> ([LogicalUnit?], [Segment]) {
        let start = layout.header
        let targetLength = layout.targetsLength(p)
        let segmentLength = layout.segmentsLength(p)
        let inlineLength = layout.inlineLength(p)
        guard start + targetLength + segmentLength + inlineLength <= length, targetLength % 32 == 0 else {
            throw .listLength
        }
        guard targetLength + segmentLength <= maxDescriptorListLength else { throw .listLength }
        // TOO MANY TARGET DESCRIPTORS
        guard targetLength / 32 <= maxTargetDescriptors else { throw .illegal(0x26, 0x06) }
        guard inlineLength == 0 else { throw .illegal(0x26, 0x0B) }  // INLINE DATA LENGTH EXCEEDED
        var targets: [LogicalUnit?] = []
        for at in stride(from: start, to: start + targetLength, by: 32) {
            targets.append(try target(p, at: at))
        }
        var segments: [Segment] = []
        var at = start + targetLength
        let end = at + segmentLength
        while at < end {
            guard at + 4 <= end else { throw .listLength }
            let type = p[at]
            let bodyLength = Int(p.u16(at + 2))
            guard type == 0x02 else { throw .illegal(0x26, 0x09) }  // UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE
            guard bodyLength == 0x18, at + 4 + bodyLength <= end else { throw .listLength }
            segments.append(
                Segment(
                    source: Int(p.u16(at + 4)), destination: Int(p.u16(at + 6)), blocks: UInt64(p.u16(at + 10)),
                    sourceLBA: p.u64(at + 12), destinationLBA: p.u64(at + 20)))
            // TOO MANY SEGMENT DESCRIPTORS
            guard segments.count <= maxSegmentDescriptors else { throw .illegal(0x26, 0x08) }
            at += 4 + bodyLength
        }
        return (targets, segments)
    }

    /// Identification descriptor target descriptor (SPC-4 §6.4.5.6): an LU
    /// by its NAA designator; nil when this nexus reaches no such LU.
    static func target(_ p: CDB, at: Int) throws(Failure) -> LogicalUnit? {
        guard p[at] == 0xE4 else { throw .illegal(0x26, 0x07) }  // UNSUPPORTED TARGET DESCRIPTOR TYPE CODE
        // Only block devices (peripheral device type 0).
        guard p[at + 1] & 0x1F == 0 else { throw .illegal(0x26, 0x07) }
        let designatorType = p[at + 5] & 0x0F
        let designatorLength = Int(p[at + 7])
        guard designatorType == 0x03, designatorLength <= 20 else { return nil }
        let designator = Array(p.bytes[(at + 8)..<(at + 8 + designatorLength)])
        guard let lu = LogicalUnit.context.copyTargets(designator) else { return nil }
        // DISK BLOCK LENGTH must be the LU's.
        let blockLength = Int(p.u24(at + 29))
        return blockLength == lu.device.blockSize ? lu : nil
    }

    /// One block→block segment (SPC-4 §6.4.6.5); returns the bytes copied.
    static func copy(_ s: Segment, targets: [LogicalUnit?]) async throws -> UInt64 {
        guard s.source < targets.count, s.destination < targets.count,
            let source = targets[s.source], let destination = targets[s.destination]
        else { throw Failure.unreachable }
        guard s.blocks > 0 else { return 0 }
        if destination.writeProtected { throw Failure.aborted(0x27, 0x00) }
        return try await Offload.copyBlocks(
            from: source, at: s.sourceLBA, to: destination, at: s.destinationLBA, blocks: s.blocks)
    }
}
