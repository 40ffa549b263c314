import DepotCore
import Testing

@Suite struct DurationTextTests {
    @Test func durationsAreANumberAndAUnit() throws {
        #expect(try DurationText.seconds("90") == 90)
        #expect(try DurationText.seconds("90s") == 90)
        #expect(try DurationText.seconds("45m") == 2700)
        #expect(try DurationText.seconds("12h") == 43_200)
        #expect(try DurationText.seconds("30d") == 2_592_000)
        #expect(try DurationText.seconds("2w") == 1_209_600)
        for bad in ["", "d", "-1d", "1.5d", "1y", "３d", "1 d", "99999999999999999999d", "9223372036854775807w"] {
            #expect(throws: DepotError.self, "\(bad)") { try DurationText.seconds(bad) }
        }
    }
}
