import DepotCore
import Testing

/// CIDR networks as iSCSI ACLs and export rules use them.
@Suite struct NetworkPrefixTests {
    @Test func parsesBothFamiliesAndCanonicalises() throws {
        #expect(try NetworkPrefix(parsing: "10.1.0.0/16").description == "10.1.0.0/16")
        #expect(try NetworkPrefix(parsing: "192.168.7.9").description == "192.168.7.9/32")
        #expect(try NetworkPrefix(parsing: "FD00:0:0::/64").description == "fd00::/64")
        #expect(try NetworkPrefix(parsing: "::1").description == "::1/128")
        #expect(try NetworkPrefix(parsing: "0.0.0.0/0").contains("203.0.113.5"))
        #expect(try NetworkPrefix(parsing: "10.0.0.1/8", hostBits: true).description == "10.0.0.0/8")
    }

    @Test func refusesWhatIsNotANetwork() {
        for bad in [
            "", "10.0.0.1/8", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/0008",
            "10.0.0.0/٨", "host.example", "10.0.0.0/8/8", "1.2.3", "fd00::1/64",
        ] {
            #expect(throws: DepotError.self, "\(bad)") { try NetworkPrefix(parsing: bad) }
        }
    }

    @Test func containsMatchesByPrefixAndFamily() throws {
        let v4 = try NetworkPrefix(parsing: "10.20.0.0/15")
        #expect(v4.contains("10.20.255.1") && v4.contains("10.21.0.0"))
        #expect(!v4.contains("10.22.0.1") && !v4.contains("11.20.0.1"))
        // A dual-stack socket reports an IPv4 peer as IPv4-mapped IPv6.
        #expect(v4.contains("::ffff:10.21.3.4"))
        #expect(!v4.contains("::10.21.3.4") && !v4.contains("not-an-address") && !v4.contains(""))
        let v6 = try NetworkPrefix(parsing: "fd00:1::/33")
        #expect(v6.contains("fd00:1:7fff::1") && !v6.contains("fd00:1:8000::1") && !v6.contains("10.20.0.1"))
        let odd = try NetworkPrefix(parsing: "172.16.0.0/12")
        #expect(odd.contains("172.31.255.255") && !odd.contains("172.32.0.0") && !odd.contains("172.15.255.255"))
    }

    @Test func overlapsIsSymmetricAndFamilyBound() throws {
        let wide = try NetworkPrefix(parsing: "10.0.0.0/8")
        let narrow = try NetworkPrefix(parsing: "10.9.0.0/16")
        let other = try NetworkPrefix(parsing: "11.0.0.0/8")
        #expect(wide.overlaps(narrow) && narrow.overlaps(wide))
        #expect(!wide.overlaps(other) && !other.overlaps(wide))
        #expect(!(try NetworkPrefix(parsing: "::/0")).overlaps(wide))
    }
}
