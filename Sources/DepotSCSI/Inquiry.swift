import Foundation

/// INQUIRY (SPC-4 §6.6): standard data and the VPD pages 00h, 80h, 83h, 8Fh, B0h, B1h, B2h.
enum Inquiry {
    static let vendor = "DEPOT   "
    static let product = "VOLUME          "
    static let revision = "0001"

    static func respond(_ lu: LogicalUnit, _ cdb: CDB) -> SCSIResult {
        let evpd = cdb[1] & 0x01 != 0
        let page = cdb[2]
        let allocation = Int(cdb.u16(3))
        if cdb[1] & 0xFE != 0 { return .check(.invalidField(byte: 1)) }
        guard evpd else {
            // A page code without EVPD is an error (SPC-4 §6.6.1).
            if page != 0 { return .check(.invalidField(byte: 2)) }
            return .ok(standard().allocated(allocation))
        }
        let body: [UInt8]
        switch page {
        case 0x00: body = [0x00, 0x80, 0x83, 0x8F, 0xB0, 0xB1, 0xB2]
        case 0x80: body = Array(serial(lu).utf8)
        case 0x83: body = designators(lu)
        case 0x8F: body = CopyResults.vpdPage()
        case 0xB0: body = blockLimits(lu)
        case 0xB1: body = blockCharacteristics()
        case 0xB2: body = provisioning(lu)
        default: return .check(.invalidField(byte: 2))
        }
        var d: [UInt8] = [0x00, page, 0, 0] + body
        d.put16(UInt16(body.count), at: 2)
        return .ok(d.allocated(allocation))
    }

    static func standard() -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 96)
        d[0] = 0x00  // connected, direct-access block device
        d[2] = 0x06  // SPC-4
        d[3] = 0x12  // HISUP, response data format 2
        // TPGS 11b: implicit and explicit ALUA (SPC-4 §5.16); 3PC: third-party copy
        // (EXTENDED COPY, VPD 8Fh) is supported (SPC-4 §6.6.2) — ESXi uses VAAI
        // full copy only when it is set.
        d[5] = 0x30 | 0x08
        d[4] = UInt8(d.count - 5)
        d[7] = 0x02  // CMDQUE
        d.replaceSubrange(8..<16, with: Array(vendor.utf8))
        d.replaceSubrange(16..<32, with: Array(product.utf8))
        d.replaceSubrange(32..<36, with: Array(revision.utf8))
        // Version descriptors (SPC-4 §6.6.2, table 150): SAM-5, SPC-4, SBC-3, iSCSI.
        for (i, code) in [UInt16(0x00A0), 0x0460, 0x04C0, 0x0960].enumerated() { d.put16(code, at: 58 + 2 * i) }
        return d
    }

    /// The volume's UUID as 32 hex digits: stable for the life of the volume.
    static func serial(_ lu: LogicalUnit) -> String {
        lu.uuid.uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    static func uuidBytes(_ lu: LogicalUnit) -> [UInt8] {
        withUnsafeBytes(of: lu.uuid.uuid) { Array($0) }
    }

    /// NAA IEEE Registered Extended (6h), 16 bytes, from the UUID.
    static func naa(_ lu: LogicalUnit) -> [UInt8] {
        let u = uuidBytes(lu)
        var naa = [UInt8](repeating: 0, count: 16)
        naa[0] = 0x60 | (u[0] & 0x0F)
        for i in 1..<16 { naa[i] = u[i] }
        return naa
    }

    /// Device identification (SPC-4 §7.8.6): an NAA IEEE Registered Extended
    /// designator (NAA 6) and a T10 vendor ID designator, both from the UUID.
    static func designators(_ lu: LogicalUnit) -> [UInt8] {
        let naa = naa(lu)
        let t10 = Array((vendor + serial(lu)).utf8)
        let group = LogicalUnit.context.portalGroup
        let port: [UInt8] = [0, 0, UInt8(group >> 8), UInt8(group & 0xFF)]
        // Relative target port (type 4) and target port group (type 5), associated
        // with the target port the command came through; PIV with protocol iSCSI.
        return [0x01, 0x03, 0x00, UInt8(naa.count)] + naa + [0x02, 0x01, 0x00, UInt8(t10.count)] + t10
            + [0x51, 0x94, 0x00, 4] + port + [0x01, 0x15, 0x00, 4] + port
    }

    /// Block limits (SBC-3 §6.6.3): no transfer limit below 32 MiB; optimal 1 MiB.
    static func blockLimits(_ lu: LogicalUnit) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x3C)
        let bs = UInt32(lu.device.blockSize)
        b.put32(UInt32(BlockIO.maxTransferBytes) / bs, at: 4)  // MAXIMUM TRANSFER LENGTH (page bytes 8-11)
        b.put32((1 << 20) / bs, at: 8)  // OPTIMAL TRANSFER LENGTH (page bytes 12-15)
        // WSNZ clear: WRITE SAME with 0 blocks runs to the end of the medium.
        b[1] = CompareAndWrite.maxBlocks  // MAXIMUM COMPARE AND WRITE LENGTH (page byte 5)
        if lu.device.canUnmap {
            b.put32(UInt32(LogicalBlockProvisioning.maxUnmapBytes / UInt64(bs)), at: 16)  // MAXIMUM UNMAP LBA COUNT
            b.put32(UInt32(LogicalBlockProvisioning.maxDescriptors), at: 20)  // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
            b.put32(max(1, 4096 / bs), at: 24)  // OPTIMAL UNMAP GRANULARITY
        }
        b.put64(BlockOperations.maxWriteSameBytes / UInt64(bs), at: 32)  // MAXIMUM WRITE SAME LENGTH (page bytes 36-43)
        b.put32(WriteAtomic.maxBlocks, at: 40)  // MAXIMUM ATOMIC TRANSFER LENGTH (page bytes 44-47)
        b.put32(1, at: 44)  // ATOMIC ALIGNMENT
        b.put32(1, at: 48)  // ATOMIC TRANSFER LENGTH GRANULARITY
        return b
    }

    /// Block device characteristics (SBC-4 §6.6.2): non-rotating medium.
    static func blockCharacteristics() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x3C)
        b.put16(0x0001, at: 0)
        // WABEREQ and WACEREQ 01b: after BLOCK or CRYPTOGRAPHIC ERASE reads succeed (zeros).
        b[3] = 0x40 | 0x10
        return b
    }

    /// Logical block provisioning (SBC-3 §6.6.4): thin LUs offer UNMAP and
    /// WRITE SAME(10/16) with UNMAP, and read deallocated blocks as zeros.
    static func provisioning(_ lu: LogicalUnit) -> [UInt8] {
        guard lu.device.canUnmap else { return [0x00, 0x00, 0x00, 0x00] }
        // THRESHOLD EXPONENT; LBPU, LBPWS, LBPWS10, LBPRZ, ANC_SUP; thin provisioning.
        return [lu.thresholdExponent, 0x80 | 0x40 | 0x20 | 0x04 | 0x02, 0x02, 0x00]
    }
}
