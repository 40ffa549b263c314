import DepotCore
import DepotExports
import Testing

@Suite struct ClientRulesTests {
    @Test(arguments: [
        "*", "nas01", "hv-1.lab.example.com", "10.0.0.1", "10.0.0.0/8", "192.168.1.0/24", "::1", "fd00::/8",
        "2001:db8::1/128",
    ])
    func acceptsClients(text: String) throws {
        _ = try ClientSpec.parse(text)
    }

    @Test(arguments: [
        "", "host name", "a\"b", "x(rw)", "10.0.0.0/33", "::/129", "-host", "host-", "@netgroup", "*.example.com",
        "10.0.0.1/x", "a..b", "10.0.0.0/", "h\n",
    ])
    func refusesClients(text: String) {
        #expect(throws: DepotError.self) { try ClientSpec.parse(text) }
    }

    @Test func overlapFollowsAddressRanges() throws {
        func o(_ a: String, _ b: String) throws -> Bool { try ClientSpec.parse(a).overlaps(try ClientSpec.parse(b)) }
        #expect(try o("10.0.0.0/8", "10.1.2.3"))
        #expect(try o("10.1.0.0/16", "10.0.0.0/8"))
        #expect(try !o("10.0.0.0/16", "10.1.0.0/16"))
        #expect(try o("fd00::/8", "fd12::1"))
        #expect(try !o("10.0.0.1", "::1"))
        #expect(try o("Nas01", "nas01"))
        #expect(try !o("nas01", "10.0.0.1"))
        #expect(try o("*", "10.0.0.1"))
    }

    @Test func rulesAreCheckedAndOrdered() throws {
        let rules = try ExportRules.validate(
            [
                ExportRule(client: "*", access: .ro, squash: .all),
                ExportRule(client: "10.0.0.0/24"),
                ExportRule(client: "NAS01", access: .ro),
            ], force: false)
        #expect(rules.map(\.client) == ["10.0.0.0/24", "nas01", "*"])
        #expect(throws: DepotError.self) { try ExportRules.validate([], force: false) }
        #expect(throws: DepotError.self) {
            try ExportRules.validate(
                [ExportRule(client: "10.0.0.0/8"), ExportRule(client: "10.9.9.9", access: .ro)], force: false)
        }
        #expect(throws: DepotError.self) {
            try ExportRules.validate([ExportRule(client: "*"), ExportRule(client: "*", access: .ro)], force: false)
        }
        #expect(throws: DepotError.self) {
            try ExportRules.validate([ExportRule(client: "h", anonuid: -1)], force: false)
        }
        // no_root_squash to the world needs force.
        #expect(throws: DepotError.self) {
            try ExportRules.validate([ExportRule(client: "*", squash: .none)], force: false)
        }
        #expect(try ExportRules.validate([ExportRule(client: "*", squash: .none)], force: true).count == 1)
        #expect(try ExportRules.validate([ExportRule(client: "10.0.0.5", squash: .none)], force: false).count == 1)
    }
}
