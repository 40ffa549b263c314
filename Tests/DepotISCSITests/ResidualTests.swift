@testable import DepotISCSI
import Testing

/// Residuals (RFC 7143 §11.4.5) are 32-bit fields computed from two values a
/// peer chooses: they saturate, never trap.
@Suite struct ResidualTests {
    @Test func aCommandAskingForMoreThan4GiBSaturatesTheOverflowCount() {
        // The crash: WRITE(16), TRANSFER LENGTH 0xFFFFFFFF of 512 bytes, EDTL 512.
        let r = ISCSIConnection.residual(needed: 0xFFFF_FFFF * 512, expected: 512)
        #expect(r.flag == 0x04)
        #expect(r.count == 0xFFFF_FFFF)
        let big = ISCSIConnection.residual(needed: .max, expected: 0)
        #expect(big.flag == 0x04 && big.count == 0xFFFF_FFFF)
    }

    @Test func exactDifferencesBelow4GiB() {
        #expect(ISCSIConnection.residual(needed: 4096, expected: 512) == (0x04, 3584))
        #expect(ISCSIConnection.residual(needed: 512, expected: 4096) == (0x02, 3584))
        #expect(ISCSIConnection.residual(needed: 0, expected: 0xFFFF_FFFF) == (0x02, 0xFFFF_FFFF))
        #expect(ISCSIConnection.residual(needed: 1 << 32, expected: 1) == (0x04, 0xFFFF_FFFF))
        #expect(ISCSIConnection.residual(needed: 7, expected: 7) == (0, 0))
    }
}
