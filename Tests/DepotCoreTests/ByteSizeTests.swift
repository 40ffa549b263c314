import DepotCore
import Testing

@Suite struct ByteSizeTests {
    static let good: [(String, UInt64)] = [
        ("512", 512), ("1K", 1024), ("10G", 10_737_418_240), ("10GiB", 10_737_418_240), ("10gb", 10_737_418_240),
        ("1.5T", 1_649_267_441_664), ("0.5M", 524_288), ("4096B", 4096), (" 2M ", 2_097_152),
        ("1P", 1_125_899_906_842_624),
    ]

    @Test(arguments: good)
    func parsesBinaryUnits(text: String, bytes: UInt64) throws {
        #expect(try ByteSize.parse(text) == bytes)
    }

    @Test(arguments: [
        "", "0", "0G", "-1G", "-5", "1Q", "G", "1.2.3G", "abc", "1 X", "99999999999P", "1e9", ".", "1..5G",
    ])
    func rejectsBadSizes(text: String) {
        #expect(throws: DepotError.self) { try ByteSize.parse(text) }
    }

    @Test func errorsNameTheProblem() {
        do {
            _ = try ByteSize.parse("3Q")
            Issue.record("3Q parsed")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("unknown size unit 'Q'"))
        }
        do {
            _ = try ByteSize.parse("-2G")
            Issue.record("-2G parsed")
        } catch {
            #expect(error.message.contains("positive"))
        }
    }

    @Test func formatsHumanSizes() {
        #expect(ByteSize.format(0) == "0 B")
        #expect(ByteSize.format(512) == "512 B")
        #expect(ByteSize.format(1024) == "1 KiB")
        #expect(ByteSize.format(1536) == "1.5 KiB")
        #expect(ByteSize.format(10 << 30) == "10 GiB")
        #expect(ByteSize.format(3 << 39) == "1.5 TiB")
        #expect(ByteSize.describe(512) == "512 bytes")
        #expect(ByteSize.describe(4 << 30) == "4 GiB (4294967296 bytes)")
        #expect(ByteSize.describe(UInt64.max).hasPrefix("16 EiB ("))
    }

    /// `+N` / `-N` are changes of the current size; a plain size never carries a sign.
    @Test func relativeChanges() throws {
        #expect(try ByteSize.parseChange("+1G") == .grow(1 << 30))
        #expect(try ByteSize.parseChange("-512M") == .shrink(512 << 20))
        #expect(try ByteSize.parseChange("10G") == .absolute(10 << 30))
        #expect(try ByteSize.parseChange("+1G").applied(to: 4 << 30) == 5 << 30)
        #expect(try ByteSize.parseChange("-1G").applied(to: 4 << 30) == 3 << 30)
        #expect(throws: DepotError.self) { try ByteSize.Change.shrink(4 << 30).applied(to: 4 << 30) }
        #expect(throws: DepotError.self) { try ByteSize.Change.grow(UInt64(Int64.max)).applied(to: 4 << 30) }
        #expect(throws: DepotError.self) { try ByteSize.parse("+1G") }
    }
}
